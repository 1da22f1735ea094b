"""The serving contract of every app, in one place: signature inputs and outputs with their dtypes.

The tests check each export against this table, and the server and the client read it, so a change to
an app's serving signature shows up here or fails a test.
"""

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
