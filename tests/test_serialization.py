"""Config, .keras and SavedModel round trips of models built from our layers."""

import json

import keras
import numpy as np
import pytest

import layers
from tests.helpers import run_without_our_code
from tests.test_cells import CELLS, INPUT_DIM, KINDS, SEQUENCE_LAYERS


# Each layer's own option, away from its default, so that a round trip that dropped it would be seen.
OPTIONS = {"SimpleRNN": {"activation": "relu"}, "GRU": {"update_gate_bias": -2.0}, "LSTM": {"unit_forget_bias": False}}


def small_model(kind):
    inputs = keras.Input((None, INPUT_DIM))
    masked = keras.layers.Masking(0.0)(inputs)
    sequence = keras.layers.Bidirectional(
        SEQUENCE_LAYERS[kind](6, return_sequences=True, dropout=0.1, **OPTIONS[kind])
    )(masked)
    outputs = layers.DeepRNN(kind.lower() if kind != "SimpleRNN" else "simple_rnn", units=[5, 4], output_units=2)(
        sequence
    )
    return keras.Model(inputs, outputs)


def inputs_with_padding(batch, seed=0, time=9):
    x = np.random.default_rng(seed).normal(0, 1, (batch, time, INPUT_DIM)).astype("float32")
    x[0, time // 2 :] = 0.0
    return x


@pytest.mark.parametrize("kind", KINDS)
def test_layer_config_round_trip(kind):
    layer = SEQUENCE_LAYERS[kind](
        7, return_sequences=True, go_backwards=True, dropout=0.25, recurrent_dropout=0.5, **OPTIONS[kind]
    )
    clone = SEQUENCE_LAYERS[kind].from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    assert clone.cell.dropout == 0.25 and clone.go_backwards
    for name, value in OPTIONS[kind].items():
        assert getattr(clone.cell, name) == value


@pytest.mark.parametrize("kind", KINDS)
def test_cell_config_round_trip_inside_rnn(kind):
    layer = layers.RNN(CELLS[kind](5, **OPTIONS[kind]))
    clone = layers.RNN.from_config(json.loads(json.dumps(layer.get_config())))
    for name, value in OPTIONS[kind].items():
        assert getattr(clone.cell, name) == value


def test_deep_rnn_config_round_trip():
    deep = layers.DeepRNN("lstm", units=[8, 8, 8], bidirectional=True, head_units=[4], output_units=1)
    clone = layers.DeepRNN.from_config(json.loads(json.dumps(deep.get_config())))
    assert clone.get_config() == deep.get_config()


@pytest.mark.parametrize("kind", KINDS)
def test_keras_file_round_trip_is_exact(kind, tmp_path):
    model = small_model(kind)
    x = inputs_with_padding(3)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(reloaded(x), model(x))
    backward_cell = reloaded.layers[2].backward_layer.cell
    for name, value in OPTIONS[kind].items():
        assert getattr(backward_cell, name) == value


def test_saved_model_reloads_without_our_code_at_two_batch_sizes_and_lengths(tmp_path):
    model = small_model("LSTM")
    export_dir = tmp_path / "export"
    model.export(str(export_dir), verbose=False)
    for batch in (1, 5):
        x = inputs_with_padding(batch, seed=batch, time=3 + 4 * batch)  # time is dynamic in the export too
        np.save(tmp_path / f"x{batch}.npy", x)
        np.save(tmp_path / f"y{batch}.npy", model(x).numpy())
    script = f"""
import json, numpy as np, tensorflow as tf
loaded = tf.saved_model.load({str(export_dir)!r})
serve = loaded.signatures["serving_default"]
for batch in (1, 5):
    x = np.load({str(tmp_path)!r} + f"/x{{batch}}.npy")
    (output,) = serve(tf.constant(x)).values()
    np.testing.assert_allclose(output.numpy(), np.load({str(tmp_path)!r} + f"/y{{batch}}.npy"), atol=1e-5)
print(json.dumps("ok"))
"""
    assert run_without_our_code(script, tmp_path) == "ok"
