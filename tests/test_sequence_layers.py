"""Masks, direction, states, stacking, dropout and argument errors of the sequence layers."""

import keras
import numpy as np
import pytest

import layers
from layers import time_loop
from tests import numpy_reference
from tests.test_cells import BATCH, INPUT_DIM, KINDS, SEQUENCE_LAYERS, TIME, UNITS, make_layer, random_inputs

LENGTHS = np.array([7, 4, 1])


def padded_inputs():
    x = random_inputs()
    mask = np.arange(TIME)[None, :] < LENGTHS[:, None]
    return np.where(mask[..., None], x, 0.0).astype("float32"), mask


@pytest.mark.parametrize("kind", KINDS)
def test_padded_masked_batch_equals_each_sequence_alone(kind):
    layer, _ = make_layer(kind, return_sequences=True, return_state=True)
    x, mask = padded_inputs()
    outputs, *states = layer(x, mask=mask)
    for row, length in enumerate(LENGTHS):
        alone_outputs, *alone_states = layer(x[row : row + 1, :length])
        np.testing.assert_allclose(outputs[row, :length], alone_outputs[0], atol=1e-5)
        for got, want in zip(states, alone_states):
            np.testing.assert_allclose(got[row], want[0], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_pre_padded_masked_batch_equals_each_sequence_alone(kind, go_backwards):
    layer, _ = make_layer(kind, return_state=True, go_backwards=go_backwards)
    x = random_inputs()
    mask = np.arange(TIME)[None, :] >= (TIME - LENGTHS)[:, None]
    x = np.where(mask[..., None], x, 0.0).astype("float32")
    _, *states = layer(x, mask=mask)
    for row, length in enumerate(LENGTHS):
        _, *alone_states = layer(x[row : row + 1, TIME - length :])
        for got, want in zip(states, alone_states):
            np.testing.assert_allclose(got[row], want[0], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_masking_layer_mask_reaches_the_layer(kind):
    layer, weights = make_layer(kind)
    x, _ = padded_inputs()
    model = keras.Sequential([keras.Input((TIME, INPUT_DIM)), keras.layers.Masking(0.0), layer])
    _, expected_states = numpy_reference.run_sequence(kind, weights, x, lengths=LENGTHS)
    np.testing.assert_allclose(model(x), expected_states[0], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_go_backwards_reads_the_reversed_sequence(kind):
    backward, weights = make_layer(kind, return_sequences=True, go_backwards=True)
    x = random_inputs()
    expected, _ = numpy_reference.run_sequence(kind, weights, x[:, ::-1])
    np.testing.assert_allclose(backward(x), expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_return_state_gives_final_states(kind):
    layer, weights = make_layer(kind, return_state=True)
    x = random_inputs()
    output, *states = layer(x)
    _, expected_states = numpy_reference.run_sequence(kind, weights, x)
    assert len(states) == numpy_reference.STATE_COUNT[kind]
    np.testing.assert_allclose(output, expected_states[0], atol=1e-5)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_bidirectional_is_forward_joined_with_reversed_backward(kind, merge_mode):
    layer, _ = make_layer(kind, return_sequences=True)
    bidirectional = keras.layers.Bidirectional(layer, merge_mode=merge_mode)
    x = random_inputs()
    bidirectional(x)
    rng = np.random.default_rng(9)
    forward_weights = numpy_reference.random_weights(kind, UNITS, INPUT_DIM, rng)
    backward_weights = numpy_reference.random_weights(kind, UNITS, INPUT_DIM, rng)
    bidirectional.forward_layer.cell.set_notation_weights(forward_weights)
    bidirectional.backward_layer.cell.set_notation_weights(backward_weights)
    forward, _ = numpy_reference.run_sequence(kind, forward_weights, x)
    backward, _ = numpy_reference.run_sequence(kind, backward_weights, x[:, ::-1])
    backward = backward[:, ::-1]
    expected = {
        "concat": np.concatenate([forward, backward], axis=-1),
        "sum": forward + backward,
        "ave": (forward + backward) / 2,
        "mul": forward * backward,
    }[merge_mode]
    np.testing.assert_allclose(bidirectional(x), expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_with_mask_matches_unpadded(kind):
    bidirectional = keras.layers.Bidirectional(SEQUENCE_LAYERS[kind](UNITS, return_sequences=True))
    x, mask = padded_inputs()
    outputs = bidirectional(x, mask=mask)
    for row, length in enumerate(LENGTHS):
        alone = bidirectional(x[row : row + 1, :length])
        np.testing.assert_allclose(outputs[row, :length], alone[0], atol=1e-5)
        np.testing.assert_array_equal(outputs[row, length:], 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_return_state_and_initial_state(kind):
    bidirectional = keras.layers.Bidirectional(SEQUENCE_LAYERS[kind](UNITS, return_sequences=True, return_state=True))
    x = random_inputs()
    state_count = numpy_reference.STATE_COUNT[kind]
    rng = np.random.default_rng(5)
    initial = [rng.normal(0, 1, (BATCH, UNITS)).astype("float32") for _ in range(2 * state_count)]
    outputs, *states = bidirectional(x, initial_state=initial)
    forward_weights = bidirectional.forward_layer.cell.notation_weights()
    backward_weights = bidirectional.backward_layer.cell.notation_weights()
    forward, forward_states = numpy_reference.run_sequence(kind, forward_weights, x, initial[:state_count])
    backward, backward_states = numpy_reference.run_sequence(kind, backward_weights, x[:, ::-1], initial[state_count:])
    np.testing.assert_allclose(outputs, np.concatenate([forward, backward[:, ::-1]], axis=-1), atol=1e-5)
    for got, want in zip(states, forward_states + backward_states):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # The same in a functional model with the initial states as inputs.
    sequence_input = keras.Input((None, INPUT_DIM))
    state_inputs = [keras.Input((UNITS,)) for _ in range(2 * state_count)]
    functional = keras.Model([sequence_input] + state_inputs, bidirectional(sequence_input, initial_state=state_inputs))
    for got, want in zip(functional([x] + initial), [outputs] + states):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_lstm_builds_inside_a_traced_function():
    model = keras.Sequential([layers.LSTM(3), keras.layers.Dense(1)])  # no Input: built during fit's trace
    model.compile("sgd", "mse")
    model.fit(random_inputs(), np.zeros((BATCH, 1)), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[0].cell.notation_weights()["bf"].shape, (3,))


def test_float64_layer_is_exact_in_float64():
    layer = layers.GRU(UNITS, return_sequences=True, dtype="float64")
    layer.build((None, None, INPUT_DIM))
    weights = numpy_reference.random_weights("GRU", UNITS, INPUT_DIM, np.random.default_rng(0))
    layer.cell.set_notation_weights(weights)
    for name, value in layer.cell.notation_weights().items():
        np.testing.assert_array_equal(value, weights[name])
    x = random_inputs().astype("float64")
    expected, _ = numpy_reference.run_sequence("GRU", weights, x)
    np.testing.assert_allclose(layer(x), expected, atol=1e-12)


def test_cell_and_layer_dtype_must_agree():
    with pytest.raises(ValueError, match=r"dtype policy.*Received: cell dtype policy 'float32', layer dtype policy 'float64'"):
        layers.RNN(layers.LSTMCell(4), dtype="float64")


def test_deep_rnn_stacks_layers_each_reading_the_previous_sequence():
    deep = layers.DeepRNN("gru", units=[UNITS, 6, 3], return_sequences=True)
    x = random_inputs()
    outputs = deep(x)
    expected = x.astype(np.float64)
    for layer in deep.recurrent_layers:
        expected, _ = numpy_reference.run_sequence("GRU", layer.cell.notation_weights(), expected)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


def test_deep_rnn_passes_layer_options_to_every_layer():
    deep = layers.DeepRNN("simple_rnn", units=[UNITS, 6], return_sequences=True, layer_options={"activation": "relu"})
    x = random_inputs()
    outputs = deep(x)
    expected = x.astype(np.float64)
    for layer in deep.recurrent_layers:
        expected, _ = numpy_reference.run_sequence("SimpleRNN", layer.cell.notation_weights(), expected, activation="relu")
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    clone = layers.DeepRNN.from_config(deep.get_config())
    assert [layer.cell.activation for layer in clone.recurrent_layers] == ["relu", "relu"]
    with pytest.raises(ValueError, match=r"layer_options.*Received: \['units'\]"):
        layers.DeepRNN("gru", units=[4], layer_options={"units": 8})


def test_deep_bidirectional_lstm_with_head():
    deep = layers.DeepRNN("lstm", units=[8, 8, 8], bidirectional=True, head_units=[4], output_units=2)
    x, mask = padded_inputs()
    assert deep(x, mask=mask).shape == (BATCH, 2)
    assert len(deep.recurrent_layers) == 3
    assert all(isinstance(layer, keras.layers.Bidirectional) for layer in deep.recurrent_layers)
    # 3 bidirectional LSTM layers: 4 gates * (units * (units + input) + units), twice per layer.
    expected = 2 * 4 * (8 * (8 + INPUT_DIM) + 8) + 2 * 2 * 4 * (8 * (8 + 16) + 8) + (16 * 4 + 4) + (4 * 2 + 2)
    assert deep.count_params() == expected


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_is_training_only_and_same_mask_every_step(kind):
    layer = SEQUENCE_LAYERS[kind](UNITS, dropout=0.5, recurrent_dropout=0.3, seed=1, return_sequences=True)
    x = random_inputs()
    inference = layer(x, training=False)
    np.testing.assert_allclose(inference, layer(x, training=False))
    plain = SEQUENCE_LAYERS[kind](UNITS, return_sequences=True)
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(inference, plain(x), atol=1e-6)
    assert not np.allclose(layer(x, training=True), inference)
    # Input dropout drops the same input features at every step: a constant input over time therefore
    # contributes the same masked vector, which we check on the SimpleRNN's first step directly.
    if kind == "SimpleRNN":
        no_recurrent = layers.SimpleRNN(UNITS, dropout=0.5, seed=3, return_sequences=True)
        constant = np.ones((1, TIME, INPUT_DIM), "float32")
        no_recurrent.build(constant.shape)
        no_recurrent.cell.recurrent_kernel.assign(np.zeros((UNITS, UNITS)))
        steps = no_recurrent(constant, training=True)
        np.testing.assert_allclose(steps[0, 0], steps[0, -1], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_scan_loop_gives_the_same_numbers_as_the_tensorflow_loop(kind, monkeypatch):
    layer, _ = make_layer(kind, return_sequences=True, return_state=True, hand_written_gradient=False)
    x, mask = padded_inputs()
    fast = layer(x, mask=mask)
    monkeypatch.setattr(time_loop, "tensorflow_loop", time_loop.scan_loop)
    generic = layer(x, mask=mask)
    for got, want in zip(generic, fast):
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("units", [0, -3, 2.5, None])
def test_bad_units_are_rejected(units):
    with pytest.raises(ValueError, match=rf"units.*Received: units={units}"):
        layers.LSTM(units)


def test_bad_dropout_is_rejected():
    with pytest.raises(ValueError, match=r"dropout.*Received: dropout=1\.5"):
        layers.GRU(3, dropout=1.5)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (2, 0, 3)])
def test_wrong_input_rank_is_rejected(shape):
    layer = layers.SimpleRNN(3)
    with pytest.raises(ValueError, match=r"\(batch, time, features\).*Received"):
        layer(np.ones(shape, "float32"))


def test_mismatched_initial_state_is_rejected():
    layer = layers.LSTM(3)
    x = np.ones((2, 4, 5), "float32")
    with pytest.raises(ValueError, match=r"2 initial state.*Received: 1"):
        layer(x, initial_state=[np.zeros((2, 3), "float32")])
    with pytest.raises(ValueError, match=r"\(2, 3\).*Received: shape \(2, 7\)"):
        layer(x, initial_state=[np.zeros((2, 7), "float32")] * 2)


def test_set_notation_weights_rejects_bad_keys_and_shapes():
    layer, weights = make_layer("GRU")
    with pytest.raises(ValueError, match="Received"):
        layer.cell.set_notation_weights({"Wa": weights["Wu"]})
    wrong = dict(weights, Wc=weights["Wc"].T)
    with pytest.raises(ValueError, match=r"Wc must have shape \(units, units \+ input_dim\)"):
        layer.cell.set_notation_weights(wrong)
    with pytest.raises(ValueError, match=r"bu must have shape \(units,\).*Received: shape \(2,\)"):
        layer.cell.set_notation_weights(dict(weights, bu=np.zeros(2)))


def test_cell_works_inside_keras_rnn_layer():
    cell = layers.LSTMCell(UNITS)
    builtin_loop = keras.layers.RNN(cell, return_sequences=True)
    x = random_inputs()
    outputs = builtin_loop(x)
    expected, _ = numpy_reference.run_sequence("LSTM", cell.notation_weights(), x)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
