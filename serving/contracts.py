"""The serving contract of every app, in one place: signature inputs and outputs with their dtypes.

The tests check each export against this table, and the server and the client read it, so a change to
an app's serving signature shows up here or fails a test.
"""

import importlib

import tensorflow as tf

SIGNATURE = "serving_default"

CONTRACTS = {
    "sentiment": {
        "inputs": {"text": tf.string},  # [batch]: raw review text
        # [batch]; label "positive"/"negative" (two classes; with more: label and probabilities [batch, classes])
        "outputs": {"probability": tf.float32, "label": tf.string},
    },
    "stock_forecast": {
        "inputs": {"prices": tf.float32},  # [batch, time]: 10 to 60 daily closes, oldest first
        "outputs": {"forecast": tf.float32, "lower": tf.float32, "upper": tf.float32},  # [batch, 5] each
    },
    "translation": {
        "inputs": {"text": tf.string},  # [batch]: English text
        "outputs": {"translation": tf.string},  # [batch]: Spanish, detokenized; "" for an empty input
    },
    "speech_keywords": {
        "inputs": {"audio": tf.float32},  # [batch, samples]: 16 kHz mono in [-1, 1], any length (1 s is used)
        "outputs": {"label": tf.string, "probabilities": tf.float32},  # [batch], [batch, classes] (22 bundled)
    },
}


def load_app(name):
    """The `apps.pipeline.App` of the module `apps.<name>`, e.g. `load_app("sentiment")`."""
    from apps import pipeline

    try:
        module = importlib.import_module(f"apps.{name}")
    except ModuleNotFoundError:
        raise ValueError(f"No app module apps/{name}.py. Received: {name!r}; known: {sorted(CONTRACTS)}") from None
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, pipeline.App) and value.name == name:
            return value()
    raise ValueError(f"apps/{name}.py defines no App subclass named {name!r}. Received: {name!r}")
