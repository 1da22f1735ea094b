"""The sentiment app's pretrained word vectors and max pooling, against the GloVe files and NumPy."""

import keras
import numpy as np
import pandas as pd
import pytest

from apps import sentiment
from data import glove


def test_glove_rows_are_the_packages_vectors_and_unknown_words_get_random_rows():
    vectors_path, index_path = glove.glove_files()
    words = pd.read_parquet(index_path)["index"].tolist()
    vectors = np.load(vectors_path, mmap_mode="r")
    vocabulary = ["", "[UNK]", "film", "zzqxjv-not-a-word", "dull"]
    matrix, known = glove.glove_matrix(vocabulary)
    assert matrix.shape == (5, 50) and known == 2
    np.testing.assert_array_equal(matrix[2], vectors[words.index("film")])
    np.testing.assert_array_equal(matrix[4], vectors[words.index("dull")])
    np.testing.assert_array_equal(matrix[:2], 0.0)
    assert 0.1 < np.std(matrix[3]) < 1.0  # GloVe's own scale, not zeros


def test_max_over_words_ignores_padding():
    values = np.array([[[1.0, -5.0], [3.0, -7.0], [9.0, 9.0]], [[-1.0, -2.0], [0.0, 0.0], [0.0, 0.0]]], "float32")
    mask = np.array([[True, True, False], [False, False, False]])
    pooled = keras.ops.convert_to_numpy(sentiment.MaxOverWords()(values, mask=mask))
    np.testing.assert_array_equal(pooled, [[3.0, -5.0], [0.0, 0.0]])


def tiny_data():
    texts = ["a good film", "a dull film", "good fun", "dull and bad"] * 4
    labels = np.array([1, 0, 1, 0] * 4)
    return {"train": (texts, labels), "validation": (texts[:4], labels[:4]), "test": (texts[:4], labels[:4]),
            "classes": ["negative", "positive"]}  # fmt: skip


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_two_channels_keep_glove_frozen_in_one_and_fine_tune_the_other(pooling):
    app, data = sentiment.SentimentApp(), tiny_data()
    config = sentiment.SentimentConfig(
        glove="both", pooling=pooling, vocabulary_size=50, units=(4,), sequence_length=8, ensemble_size=1
    )
    vectorizer = app.build_preprocessor(config, data)
    model = app.build_model(config, data)
    member = model.get_layer("member_0")
    frozen, tuned = member.get_layer("glove_frozen"), member.get_layer("glove_fine_tuned")
    start = frozen.get_weights()[0].copy()
    np.testing.assert_array_equal(start, tuned.get_weights()[0])
    tokens = vectorizer(np.array(data["train"][0]))
    model.fit(tokens, data["train"][1][:, None].astype("float32"), epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(frozen.get_weights()[0], start)
    assert not np.allclose(tuned.get_weights()[0], start)


def test_glove_mode_is_checked():
    with pytest.raises(ValueError, match="glove.*Received: glove='yes'"):
        sentiment.SentimentConfig(glove="yes")


def test_unicode_spaces_and_line_breaks_split_words_and_a_saved_vectorizer_loads(tmp_path):
    # U+0085 (NEL) ended "ambition" in one bundled snippet; the vocabulary file of a saved model is read back
    # line by line, so that term came back as a second "ambition" and the model could not be loaded.
    app = sentiment.SentimentApp()
    texts = ["great ambition\x85 here", "no\u00a0ambition", "ambition, again!", "Quiet\ttears"]
    data = {"train": (texts, np.array([1, 0, 1, 0]))}
    vectorizer = app.build_preprocessor(sentiment.SentimentConfig(sequence_length=4), data)
    vocabulary = vectorizer.get_vocabulary()
    assert sorted(vocabulary[2:]) == sorted(["ambition", "great", "here", "no", "again", "quiet", "tears"])
    model = keras.Sequential([app.raw_input(None), vectorizer])
    model.save(tmp_path / "vectorizer.keras")
    loaded = keras.models.load_model(tmp_path / "vectorizer.keras")
    np.testing.assert_array_equal(loaded(np.array(texts)), model(np.array(texts)))
