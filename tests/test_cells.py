"""Cells and sequence layers against the NumPy equations, Keras' built-ins and finite differences."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import layers
from tests import numpy_reference

KINDS = ["SimpleRNN", "GRU", "LSTM"]
CELLS = {"SimpleRNN": layers.SimpleRNNCell, "GRU": layers.GRUCell, "LSTM": layers.LSTMCell}
SEQUENCE_LAYERS = {"SimpleRNN": layers.SimpleRNN, "GRU": layers.GRU, "LSTM": layers.LSTM}
BATCH, TIME, INPUT_DIM, UNITS = 3, 7, 4, 5


def make_layer(kind, seed=0, **kwargs):
    """A built sequence layer with random weights set through the notes' notation."""
    rng = np.random.default_rng(seed)
    layer = SEQUENCE_LAYERS[kind](UNITS, **kwargs)
    layer.build((None, None, INPUT_DIM))
    weights = numpy_reference.random_weights(kind, UNITS, INPUT_DIM, rng)
    layer.cell.set_notation_weights(weights)
    return layer, weights


def random_inputs(seed=1, batch=BATCH, time=TIME):
    return np.random.default_rng(seed).normal(0, 1, (batch, time, INPUT_DIM)).astype("float32")


@pytest.mark.parametrize("kind", KINDS)
def test_single_step_matches_numpy_equations(kind):
    rng = np.random.default_rng(2)
    cell = CELLS[kind](UNITS)
    cell.build((None, INPUT_DIM))
    weights = numpy_reference.random_weights(kind, UNITS, INPUT_DIM, rng)
    cell.set_notation_weights(weights)
    x = rng.normal(0, 1, (BATCH, INPUT_DIM)).astype("float32")
    states = [rng.normal(0, 1, (BATCH, UNITS)).astype("float32") for _ in range(cell.state_count)]
    output, new_states = cell(x, states)
    expected = numpy_reference.STEPS[kind](weights, x.astype(np.float64), states)
    np.testing.assert_allclose(output, expected[0], atol=1e-5)
    for got, want in zip(new_states, expected):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_matches_numpy_equations(kind):
    layer, weights = make_layer(kind, return_sequences=True, return_state=True)
    x = random_inputs()
    rng = np.random.default_rng(3)
    initial = [rng.normal(0, 1, (BATCH, UNITS)).astype("float32") for _ in range(layer.cell.state_count)]
    outputs, *states = layer(x, initial_state=initial)
    expected_outputs, expected_states = numpy_reference.run_sequence(kind, weights, x, initial)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_notation_weights_round_trip(kind):
    layer, weights = make_layer(kind)
    read_back = layer.cell.notation_weights()
    assert sorted(read_back) == sorted(weights)
    for name, value in weights.items():
        np.testing.assert_allclose(read_back[name], value, atol=1e-6)
        expected_shape = (UNITS, UNITS + INPUT_DIM) if name.startswith("W") else (UNITS,)
        assert read_back[name].shape == expected_shape


def keras_builtin_with_mapped_weights(kind, weights, **builtin_options):
    """Keras' own layer carrying our notation weights; our GRU's update gate is 1 - Keras' z gate."""
    def split(matrix):
        return matrix[:, UNITS:].T, matrix[:, :UNITS].T  # input part, recurrent part

    if kind == "SimpleRNN":
        builtin = keras.layers.SimpleRNN(UNITS, return_sequences=True, **builtin_options)
        order, signs = ["a"], [1.0]
    elif kind == "GRU":
        builtin = keras.layers.GRU(UNITS, return_sequences=True, reset_after=False)
        order, signs = ["u", "r", "c"], [-1.0, 1.0, 1.0]
    else:
        builtin = keras.layers.LSTM(UNITS, return_sequences=True)
        order, signs = ["u", "f", "c", "o"], [1.0] * 4
    builtin.build((None, None, INPUT_DIM))
    kernel = np.concatenate([sign * split(weights[f"W{g}"])[0] for g, sign in zip(order, signs)], axis=1)
    recurrent = np.concatenate([sign * split(weights[f"W{g}"])[1] for g, sign in zip(order, signs)], axis=1)
    bias = np.concatenate([sign * weights[f"b{g}"] for g, sign in zip(order, signs)])
    builtin.set_weights([kernel, recurrent, bias])
    return builtin


@pytest.mark.parametrize("kind", KINDS)
def test_matches_keras_builtin_with_mapped_weights(kind):
    layer, weights = make_layer(kind, return_sequences=True)
    builtin = keras_builtin_with_mapped_weights(kind, weights)
    x = random_inputs()
    np.testing.assert_allclose(layer(x), builtin(x), atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(4)
    layer = SEQUENCE_LAYERS[kind](3, return_sequences=True, dtype="float64")
    x = tf.constant(rng.normal(0, 1, (2, 4, 2)))
    layer(x)
    probe = tf.constant(rng.normal(0, 1, (2, 4, 3)))
    mask = tf.constant([[True, True, True, True], [True, True, False, False]])

    def loss():
        return tf.reduce_sum(layer(x, mask=mask) * probe)

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss()
    variables = [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]
    analytic = tape.gradient(value, variables + [x])
    epsilon = 1e-6
    for variable, gradient in zip(variables, analytic):
        original = variable.numpy()
        numeric = np.zeros_like(original)
        for index in np.ndindex(original.shape):
            for sign in (1, -1):
                shifted = original.copy()
                shifted[index] += sign * epsilon
                variable.assign(shifted)
                numeric[index] += sign * loss().numpy() / (2 * epsilon)
        variable.assign(original)
        np.testing.assert_allclose(gradient, numeric, atol=1e-6, rtol=1e-5)
    numeric_x = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        for sign in (1, -1):
            shifted = x.numpy().copy()
            shifted[index] += sign * epsilon
            numeric_x[index] += sign * tf.reduce_sum(layer(shifted, mask=mask) * probe).numpy() / (2 * epsilon)
    np.testing.assert_allclose(analytic[-1], numeric_x, atol=1e-6, rtol=1e-5)


def test_unit_forget_bias_option():
    with_bias = layers.LSTM(3)
    without_bias = layers.LSTM(3, unit_forget_bias=False)
    with_bias.build((None, None, 2))
    without_bias.build((None, None, 2))
    np.testing.assert_array_equal(with_bias.cell.notation_weights()["bf"], np.ones(3))
    np.testing.assert_array_equal(without_bias.cell.notation_weights()["bf"], np.zeros(3))
    np.testing.assert_array_equal(with_bias.cell.notation_weights()["bu"], np.zeros(3))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_activation_matches_numpy_and_keras(activation):
    layer, weights = make_layer("SimpleRNN", activation=activation, return_sequences=True)
    x = random_inputs()
    outputs = layer(x)
    expected, _ = numpy_reference.run_sequence("SimpleRNN", weights, x, activation=activation)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    builtin = keras_builtin_with_mapped_weights("SimpleRNN", weights, activation=activation)
    np.testing.assert_allclose(outputs, builtin(x), atol=1e-5)
    if activation == "relu":
        # The weights put pre-activations on both sides of 0, so ReLU and tanh really differ here.
        assert np.any(expected == 0.0) and np.any(expected > 1.0)


@pytest.mark.parametrize("activation", ["sigmoid", "ReLU", None, np.tanh])
def test_simple_rnn_rejects_other_activations(activation):
    with pytest.raises(ValueError, match=r"`activation` must be one of \['relu', 'tanh'\].*Received: activation="):
        layers.SimpleRNN(3, activation=activation)
    with pytest.raises(ValueError, match=r"Received: activation="):
        layers.SimpleRNNCell(3, activation=activation)


def test_bidirectional_simple_rnn_keeps_the_activation_in_both_directions():
    bidirectional = keras.layers.Bidirectional(layers.SimpleRNN(UNITS, activation="relu", return_sequences=True))
    x = random_inputs()
    bidirectional(x)  # builds; the backward layer is a clone made from the forward layer's config
    assert bidirectional.backward_layer.cell.activation == "relu"
    forward_weights = bidirectional.forward_layer.cell.notation_weights()
    backward_weights = bidirectional.backward_layer.cell.notation_weights()
    forward, _ = numpy_reference.run_sequence("SimpleRNN", forward_weights, x, activation="relu")
    backward, _ = numpy_reference.run_sequence("SimpleRNN", backward_weights, x[:, ::-1], activation="relu")
    np.testing.assert_allclose(bidirectional(x), np.concatenate([forward, backward[:, ::-1]], axis=-1), atol=1e-5)


def built_gru(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = layers.GRU(UNITS, **kwargs)
    layer.build((None, None, INPUT_DIM))
    return layer


def test_update_gate_bias_sets_only_the_update_gate_slice():
    plain = built_gru()
    shifted = built_gru(update_gate_bias=-2.5)
    weights, plain_weights = shifted.cell.notation_weights(), plain.cell.notation_weights()
    np.testing.assert_array_equal(weights["bu"], np.full(UNITS, -2.5))
    np.testing.assert_array_equal(weights["br"], np.zeros(UNITS))
    np.testing.assert_array_equal(weights["bc"], np.zeros(UNITS))
    for name in ("Wu", "Wr", "Wc"):
        np.testing.assert_array_equal(weights[name], plain_weights[name])
    # It is added to the bias initializer's draw, which the default (0.0) leaves exactly as it was.
    initializer = keras.initializers.RandomNormal(seed=3)
    drawn = keras.ops.convert_to_numpy(keras.initializers.RandomNormal(seed=3)((3 * UNITS,)))
    np.testing.assert_array_equal(built_gru(bias_initializer=initializer).cell.bias.numpy(), drawn)
    offset = built_gru(bias_initializer=keras.initializers.RandomNormal(seed=3), update_gate_bias=-1.0)
    np.testing.assert_allclose(offset.cell.bias.numpy(), drawn + np.repeat([-1.0, 0.0, 0.0], UNITS), atol=1e-7)


def numpy_update_gates(weights, x, c):
    """Γu at every step of the NumPy reference run, `(batch, time, units)`."""
    outputs, _ = numpy_reference.run_sequence("GRU", weights, x, [c])
    previous = np.concatenate([c[:, None], outputs[:, :-1]], axis=1)
    joined = np.concatenate([previous, x.astype(np.float64)], axis=-1)
    return numpy_reference.sigmoid(joined @ weights["Wu"].T + weights["bu"])


def test_negative_update_gate_bias_makes_the_update_gate_small_and_keeps_the_memory():
    x = random_inputs()
    c = np.random.default_rng(6).normal(0, 1, (BATCH, UNITS)).astype("float32")
    plain = built_gru(return_sequences=True)
    shifted = built_gru(return_sequences=True, update_gate_bias=-3.0)
    plain_gates = numpy_update_gates(plain.cell.notation_weights(), x, c)
    shifted_gates = numpy_update_gates(shifted.cell.notation_weights(), x, c)
    assert 0.35 < plain_gates.mean() < 0.65  # the notes' start: about half the memory replaced per step
    assert shifted_gates.mean() < 0.1  # σ(-3) ≈ 0.047 plus what Wu adds
    # The layer follows NumPy's equations with that bias, and so keeps c<0> far better.
    expected, _ = numpy_reference.run_sequence("GRU", shifted.cell.notation_weights(), x, [c])
    np.testing.assert_allclose(shifted(x, initial_state=[c]), expected, atol=1e-5)
    plain_drift = np.abs(plain(x, initial_state=[c])[:, -1] - c).mean()
    shifted_drift = np.abs(expected[:, -1] - c).mean()
    assert shifted_drift < 0.5 * plain_drift


@pytest.mark.parametrize("value", [True, "-1", float("inf"), None])
def test_bad_update_gate_bias_is_rejected(value):
    with pytest.raises(ValueError, match=r"`update_gate_bias` must be a finite float. Received: update_gate_bias="):
        layers.GRU(3, update_gate_bias=value)
