"""Pretraining the sentiment members as a language model on the corpus' plot summaries: the data leaves out the
validation and test films, the windows and targets are those written by hand, each direction predicts only from
the words it has read, and the member starts from what the language model learned."""

import keras
import numpy as np
import pandas as pd
import pytest

from apps import sentiment
from data import loaders
from tests.test_sentiment_glove import tiny_data

TINY = dict(vocabulary_size=50, units=(4,), sequence_length=8, glove="off", embedding_dim=4, dropout=0.0,
            recurrent_dropout=0.0, ensemble_size=1)  # fmt: skip


def test_the_plot_summaries_leave_out_every_validation_and_test_film():
    # The held-out films, found from the texts load_sentiment() puts in validation and test, not from its split rule.
    reviews = pd.read_csv(loaders.SENTIMENT_FILE, keep_default_na=False)
    movie_of = dict(zip(reviews["text"], reviews["movie"]))
    _, validation, test = loaders.load_sentiment()
    held_out = {movie_of[text] for text in validation[0] + test[0]}
    plots = pd.read_csv(loaders.SENTIMENT_PLOTS_FILE, keep_default_na=False)
    kept = loaders.load_sentiment_plots()
    expected = plots.loc[~plots["movie"].isin(held_out), "text"].tolist()
    assert kept == expected
    assert len(plots) == 1083 and len(kept) == 1053  # 30 summaries are of validation or test films
    assert not set(kept) & set(plots.loc[plots["movie"].isin(held_out), "text"])


def test_word_windows_cut_each_text_apart_and_the_targets_are_its_neighbours():
    vocabulary = ["", "[UNK]", "the", "film", "is", "good", "dull"]
    windows = sentiment.word_windows(["The film is good.", "", "Dull, dull film!"], vocabulary, length=3)
    np.testing.assert_array_equal(windows, [[2, 3, 4], [5, 0, 0], [6, 6, 3]])
    following, preceding = sentiment.neighbour_words(windows, words=5)  # "good" (5) and "dull" (6) are rare: OOV, 1
    np.testing.assert_array_equal(following, [[3, 4, 0], [0, 0, 0], [1, 3, 0]])
    np.testing.assert_array_equal(preceding, [[0, 2, 3], [0, 0, 0], [0, 1, 1]])


def built(**settings):
    app, data = sentiment.SentimentApp(), tiny_data()
    config = sentiment.SentimentConfig(**{**TINY, **settings})
    app.build_preprocessor(config, data)
    return config, data, *app.build_member(config, data, 0)


def test_each_direction_predicts_from_the_words_it_has_read_only():
    config, data, member, language_model = built(pretrain_epochs=1)
    tokens = np.array([[5, 6, 7, 8, 9, 10, 0, 0]])
    changed = tokens.copy()
    changed[0, 3] = 11  # the fourth word
    (next_word, previous_word), (next_changed, previous_changed) = (
        [keras.ops.convert_to_numpy(output) for output in language_model(batch, training=False)]
        for batch in (tokens, changed)
    )
    # The forward states up to the third word have not read the fourth; the backward ones after it have not either.
    np.testing.assert_array_equal(next_word[0, :3], next_changed[0, :3])
    np.testing.assert_array_equal(previous_word[0, 4:6], previous_changed[0, 4:6])
    assert not np.allclose(next_word[0, 3:6], next_changed[0, 3:6])
    assert not np.allclose(previous_word[0, :4], previous_changed[0, :4])
    assert next_word.shape == (1, 8, len(data["vocabulary"]))  # under PRETRAINING_WORDS: the whole vocabulary


def test_the_member_starts_from_the_pretrained_embedding_and_lstm():
    config, data, member, language_model = built(pretrain_epochs=1)
    shared = {id(variable) for variable in member.trainable_variables} & {
        id(variable) for variable in language_model.trainable_variables
    }
    assert len(shared) == len(member.get_layer("embedding").trainable_variables) + len(
        member.get_layer("bidirectional_lstm").trainable_variables
    )
    before = [variable.numpy().copy() for variable in member.get_layer("embedding").trainable_variables]
    windows = sentiment.word_windows(data["train"][0], data["vocabulary"], config.sequence_length)
    sentiment.pretrain(language_model, windows, config)
    after = [variable.numpy() for variable in member.get_layer("embedding").trainable_variables]
    assert not all(np.array_equal(old, new) for old, new in zip(before, after))


def test_without_pretraining_no_language_model_is_built():
    assert built()[-1] is None


def test_pretraining_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="Received: pretrain_epochs=-1"):
        sentiment.SentimentConfig(pretrain_epochs=-1)
    with pytest.raises(ValueError, match="Received: pooling='last'"):
        sentiment.SentimentConfig(pretrain_epochs=2, pooling="last")
    with pytest.raises(ValueError, match="bundled data. Received: pretrain_epochs=2 with dataset='bundled', "
                                         "data_path='reviews.csv'"):  # fmt: skip
        sentiment.SentimentConfig(pretrain_epochs=2, data_path="reviews.csv")
