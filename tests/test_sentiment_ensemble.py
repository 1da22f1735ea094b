"""The sentiment model's members, word dropout, max-and-mean pooling and label smoothing, against NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps import sentiment
from tests.test_sentiment_glove import tiny_data

TINY = dict(vocabulary_size=50, units=(4,), sequence_length=8)


def built(data=None, **settings):
    """(app, config, vectorizer, model) on `tiny_data()` or `data`."""
    app, data = sentiment.SentimentApp(), data or tiny_data()
    config = sentiment.SentimentConfig(**{**TINY, **settings})
    vectorizer = app.build_preprocessor(config, data)
    return app, config, vectorizer, app.build_model(config, data)


def members_and_targets(app, config, vectorizer, model):
    """Each member's probability `[batch, members]` on the first training batch, and its labels `[batch]`."""
    texts, targets = next(iter(app.make_dataset(config, tiny_data(), "train", training=False)))
    np.testing.assert_array_equal(targets.numpy(), np.repeat(targets.numpy()[:, :1], config.ensemble_size, axis=1))
    tokens = vectorizer(texts)
    return tokens, keras.ops.convert_to_numpy(model(tokens))[..., 0], targets.numpy()[:, 0]


def crossentropy(labels, probabilities):
    return -(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_the_loss_is_the_mean_of_the_members_own_losses_not_the_loss_of_their_mean(label_smoothing):
    app, config, vectorizer, model = built(ensemble_size=3, label_smoothing=label_smoothing)
    tokens, members, labels = members_and_targets(app, config, vectorizer, model)
    smoothed = labels * (1 - label_smoothing) + label_smoothing / 2
    expected = crossentropy(smoothed[:, None], members).mean()
    _, targets = next(iter(app.make_dataset(config, tiny_data(), "train", training=False)))
    loss = model.evaluate(tokens, targets, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert abs(crossentropy(smoothed, members.mean(axis=1)).mean() - expected) > 1e-4  # the two differ here


def test_a_members_gradient_is_that_of_its_own_loss_alone():
    app, config, vectorizer, model = built(ensemble_size=3)
    tokens, _, labels = members_and_targets(app, config, vectorizer, model)
    targets = np.repeat(labels[:, None], 3, axis=1).astype("float32")
    head = model.get_layer("member_1").get_layer("probability").kernel
    with tf.GradientTape(persistent=True) as tape:
        together = model.compute_loss(x=tokens, y=targets, y_pred=model(tokens))
        alone = keras.losses.binary_crossentropy(labels[:, None], model.get_layer("member_1")(tokens))
        alone = keras.ops.mean(alone)
    np.testing.assert_allclose(tape.gradient(together, head), tape.gradient(alone, head) / 3, rtol=1e-4, atol=1e-7)


def test_members_start_apart_and_the_export_answers_with_their_mean():
    app, config, vectorizer, model = built(ensemble_size=2)
    first, second = (model.get_layer(f"member_{index}").get_layer("bidirectional_lstm") for index in (0, 1))
    assert not np.allclose(first.get_weights()[0], second.get_weights()[0])
    texts = np.array(["a good film", "dull and bad", "", "unseen words only"])
    members = keras.ops.convert_to_numpy(model(vectorizer(texts)))[..., 0]
    serving = keras.Sequential([app.raw_input(config), vectorizer, model])
    serve, _ = app.serving_endpoints(serving, config, {})["serving_default"]
    outputs = serve(tf.constant(texts))
    np.testing.assert_allclose(outputs["probability"].numpy(), members.mean(axis=1), rtol=1e-6)
    expected = np.where(members.mean(axis=1) >= 0.5, "positive", "negative")
    np.testing.assert_array_equal(outputs["label"].numpy().astype(str), expected)


def test_ensemble_accuracy_is_that_of_the_mean_probability():
    targets = np.array([[1, 1], [0, 0], [1, 1]], "float32")
    members = np.array([[0.9, 0.2], [0.2, 0.6], [0.3, 0.6]], "float32")[..., None]  # means 0.55, 0.4, 0.45
    np.testing.assert_array_equal(sentiment.ensemble_accuracy(targets, members), [1.0, 1.0, 0.0])
    classes = np.array([[2, 2], [0, 0]], "int32")
    softmax = np.array([[[0.5, 0.1, 0.4], [0.1, 0.2, 0.7]], [[0.3, 0.4, 0.3], [0.5, 0.1, 0.4]]], "float32")
    np.testing.assert_array_equal(sentiment.ensemble_accuracy(classes, softmax), [1.0, 1.0])


def test_more_classes_train_and_serve_their_members_mean():
    texts = ["a good film", "a dull film", "just fine", "good fun", "dull and bad", "fine enough"] * 3
    data = {"train": (texts, np.array([2, 0, 1, 2, 0, 1] * 3)), "classes": ["bad", "fine", "good"]}
    app, config, vectorizer, model = built(data, ensemble_size=2, glove="off", embedding_dim=4)
    batches = app.make_dataset(config, data, "train", training=True).map(lambda text, label: (vectorizer(text), label))
    model.fit(batches, epochs=1, verbose=0, shuffle=False)
    serving = keras.Sequential([app.raw_input(config), vectorizer, model])
    serve, _ = app.serving_endpoints(serving, config, {})["serving_default"]
    outputs = serve(tf.constant(texts[:3]))
    members = keras.ops.convert_to_numpy(model(vectorizer(np.array(texts[:3]))))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), members.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(outputs["label"].numpy().astype(str), np.array(data["classes"])[members.mean(axis=1).argmax(-1)])


def test_word_dropout_drops_whole_words_in_training_only():
    _, _, _, model = built(word_dropout=0.25)
    dropout = model.get_layer("member_0").get_layer("word_dropout")
    vectors = np.ones((64, 32, 5), "float32")
    dropped = keras.ops.convert_to_numpy(dropout(vectors, training=True))
    words = dropped[..., 0]
    np.testing.assert_array_equal(dropped, np.repeat(words[..., None], 5, axis=-1))  # a word goes whole or stays
    np.testing.assert_allclose(np.unique(words), [0.0, 1 / 0.75], rtol=1e-6)  # the kept words scaled up
    assert 0.2 < np.mean(words == 0) < 0.3
    np.testing.assert_array_equal(dropout(vectors, training=False), vectors)


def test_max_mean_pooling_is_both_over_the_real_words():
    app, config, vectorizer, model = built(pooling="max-mean")
    member = model.get_layer("member_0")
    probe = keras.Model(
        member.input, [member.get_layer("bidirectional_lstm").output, member.get_layer("max_and_mean_over_words").output]
    )
    tokens = vectorizer(np.array(["a good film", "dull", "good fun and a dull film"]))
    states, pooled = (keras.ops.convert_to_numpy(value) for value in probe(tokens))
    words = keras.ops.convert_to_numpy(tokens) != 0
    for row in range(3):
        real = states[row][words[row]]
        np.testing.assert_allclose(pooled[row], np.concatenate([real.max(axis=0), real.mean(axis=0)]), rtol=1e-5, atol=1e-6)


def test_a_saved_ensemble_loads_and_answers_the_same(tmp_path):
    app, config, vectorizer, model = built(ensemble_size=2, pooling="max-mean", word_dropout=0.1)
    serving = keras.Sequential([app.raw_input(config), vectorizer, model])
    serving.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    texts = np.array(["a good film", "dull and bad"])
    np.testing.assert_allclose(loaded(texts), serving(texts), rtol=1e-6)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(ensemble_size=0), "ensemble_size.*Received: ensemble_size=0"),
        (dict(ensemble_size=True), "ensemble_size.*Received: ensemble_size=True"),
        (dict(ensemble_size="3"), "ensemble_size.*Received: ensemble_size='3'"),
        (dict(word_dropout=1.0), "word_dropout.*Received: word_dropout=1.0"),
        (dict(label_smoothing=-0.1), "label_smoothing.*Received: label_smoothing=-0.1"),
        (dict(dropout=1.5), "dropout.*Received: dropout=1.5"),
        (dict(pooling="min"), "pooling.*Received: pooling='min'"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        sentiment.SentimentConfig(**settings)


def test_label_smoothing_with_more_classes_is_refused():
    data = {"train": (["good", "fine", "bad"], np.array([2, 1, 0])), "classes": ["bad", "fine", "good"]}
    with pytest.raises(ValueError, match="two classes only. Received: label_smoothing=0.1 with 3 classes"):
        built(data, label_smoothing=0.1, glove="off")


def test_trailing_padding_is_cut_to_the_batchs_longest_text_and_changes_no_answer():
    tokens = np.array([[5, 3, 0, 0, 0, 0], [7, 1, 2, 0, 0, 0]])
    np.testing.assert_array_equal(sentiment.DropTrailingPadding()(tokens), tokens[:, :3])
    np.testing.assert_array_equal(sentiment.DropTrailingPadding()(np.zeros((2, 6), "int64")), np.zeros((2, 1)))
    for pooling in sentiment.POOLING:
        app, config, vectorizer, model = built(pooling=pooling, sequence_length=16)
        short = vectorizer(np.array(["a good film"]))
        alone = keras.ops.convert_to_numpy(model(short))
        beside_a_long_text = model(vectorizer(np.array(["a good film", "good fun and a dull film " * 3])))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(beside_a_long_text)[:1], alone, rtol=1e-5, atol=1e-6)


def test_cosine_decay_reaches_zero_at_the_end_of_the_last_epoch():
    config = sentiment.SentimentConfig(learning_rate=2e-3, learning_rate_decay="cosine", epochs=4, batch_size=64)
    schedule = sentiment.learning_rate(config, examples=130)  # 3 batches an epoch, 12 in all
    for step, expected in ((0, 2e-3), (6, 1e-3), (3, 1e-3 * (1 + np.cos(np.pi / 4))), (12, 0.0)):
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5, atol=1e-9)
    assert sentiment.learning_rate(config.replace(learning_rate_decay="constant"), examples=130) == 2e-3
    with pytest.raises(ValueError, match="Received: learning_rate_decay='linear'"):
        sentiment.SentimentConfig(learning_rate_decay="linear")
