"""The hand-written backward pass against automatic differentiation and finite differences, and which
path a layer takes."""

import numpy as np
import pytest
import tensorflow as tf

import layers
from layers import time_loop
from tests.test_cells import CELLS, SEQUENCE_LAYERS

# SimpleRNN twice: the notes' g is tanh or ReLU, and each has its own derivative.
CASES = [("SimpleRNN", {}), ("SimpleRNN", {"activation": "relu"}), ("GRU", {}), ("LSTM", {})]
CASE_IDS = ["SimpleRNN-tanh", "SimpleRNN-relu", "GRU", "LSTM"]
BATCH, TIME, INPUT_DIM, UNITS = 3, 5, 2, 3
LENGTHS = np.array([5, 3, 1])
# Every option the hand-written loop handles differently: the output sequence and final states (their
# gradients enter at every step and at the end), the direction, and the zero outputs Bidirectional asks.
OPTIONS = [
    {"return_sequences": True, "return_state": True},
    {"go_backwards": True, "return_state": True},
    {"return_sequences": True, "go_backwards": True, "zero_output_for_mask": True},
]


def layer_pair(kind, cell_options, **options):
    """The same float64 layer twice: with the hand-written gradient, and with automatic differentiation."""
    hand_written = SEQUENCE_LAYERS[kind](UNITS, dtype="float64", hand_written_gradient=True, **cell_options, **options)
    automatic = SEQUENCE_LAYERS[kind](UNITS, dtype="float64", hand_written_gradient=False, **cell_options, **options)
    for layer in (hand_written, automatic):
        layer.build((None, None, INPUT_DIM))
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.7, weight.shape) for weight in hand_written.get_weights()]
    hand_written.set_weights(weights)
    automatic.set_weights(weights)
    return hand_written, automatic


def problem(kind, seed=1):
    """Inputs zero-padded after LENGTHS with their mask, initial states, and the probes of a loss."""
    rng = np.random.default_rng(seed)
    mask = np.arange(TIME)[None, :] < LENGTHS[:, None]
    inputs = tf.constant(np.where(mask[..., None], rng.normal(0, 1, (BATCH, TIME, INPUT_DIM)), 0.0))
    state_count = 2 if kind == "LSTM" else 1
    initial_states = [tf.constant(rng.normal(0, 1, (BATCH, UNITS))) for _ in range(state_count)]
    # One probe for a returned sequence, then one per returned (batch, units) tensor in the order returned.
    probes = [tf.constant(rng.normal(0, 1, (BATCH, TIME, UNITS)))] + [
        tf.constant(rng.normal(0, 1, (BATCH, UNITS))) for _ in range(1 + state_count)
    ]
    return inputs, tf.constant(mask), initial_states, probes


def loss(layer, inputs, mask, initial_states, probes):
    """A weighted sum of everything the layer returns, so that every returned tensor gets a gradient."""
    results = layer(inputs, mask=mask, initial_state=initial_states, training=True)
    results = results if isinstance(results, list) else [results]
    total = 0.0
    for position, result in enumerate(results):
        total += tf.reduce_sum(result * (probes[0] if len(result.shape) == 3 else probes[1 + position]))
    return total


def gradients(layer, inputs, mask, initial_states, probes):
    """Gradients of `loss` for the kernel, recurrent kernel, bias, the inputs and the initial states."""
    with tf.GradientTape() as tape:
        tape.watch([inputs, *initial_states])
        value = loss(layer, inputs, mask, initial_states, probes)
    cell = layer.cell
    return tape.gradient(value, [cell.kernel, cell.recurrent_kernel, cell.bias, inputs, *initial_states])


@pytest.mark.parametrize("kind, cell_options", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("options", OPTIONS, ids=["sequences-state", "backwards-state", "backwards-zero-output"])
def test_hand_written_gradient_equals_automatic_differentiation(kind, cell_options, options):
    hand_written, automatic = layer_pair(kind, cell_options, **options)
    arguments = problem(kind)
    assert hand_written.gradient_path(training=True) == "hand-written"
    assert automatic.gradient_path(training=True) == "automatic"
    np.testing.assert_allclose(loss(hand_written, *arguments), loss(automatic, *arguments), atol=1e-12)
    for got, want in zip(gradients(hand_written, *arguments), gradients(automatic, *arguments)):
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("kind, cell_options", CASES, ids=CASE_IDS)
def test_hand_written_gradient_equals_automatic_differentiation_in_a_traced_function(kind, cell_options):
    hand_written, automatic = layer_pair(kind, cell_options, return_sequences=True, return_state=True)
    arguments = problem(kind, seed=2)
    traced = [tf.function(lambda layer=layer: gradients(layer, *arguments)) for layer in (hand_written, automatic)]
    for got, want in zip(traced[0](), traced[1]()):
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("kind, cell_options", CASES, ids=CASE_IDS)
def test_hand_written_gradient_matches_finite_differences(kind, cell_options):
    layer, _ = layer_pair(kind, cell_options, return_sequences=True, return_state=True, go_backwards=True)
    inputs, mask, initial_states, probes = problem(kind, seed=3)
    analytic = gradients(layer, inputs, mask, initial_states, probes)
    epsilon = 1e-6

    def numeric_gradient(value, evaluate):
        """Central differences of `evaluate(shifted value)` along every element of `value`."""
        value = np.array(value)
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                shifted = value.copy()
                shifted[index] += sign * epsilon
                numeric[index] += sign * float(evaluate(shifted)) / (2 * epsilon)
        return numeric

    cell = layer.cell
    for variable, gradient in zip([cell.kernel, cell.recurrent_kernel, cell.bias], analytic):
        original = variable.numpy()

        def evaluate(shifted, variable=variable):
            variable.assign(shifted)
            return loss(layer, inputs, mask, initial_states, probes)

        numeric = numeric_gradient(original, evaluate)
        variable.assign(original)
        np.testing.assert_allclose(gradient, numeric, atol=1e-6, rtol=1e-5)
    numeric = numeric_gradient(inputs, lambda shifted: loss(layer, tf.constant(shifted), mask, initial_states, probes))
    np.testing.assert_allclose(analytic[3], numeric, atol=1e-6, rtol=1e-5)
    for position, gradient in enumerate(analytic[4:]):

        def evaluate(shifted, position=position):
            states = list(initial_states)
            states[position] = tf.constant(shifted)
            return loss(layer, inputs, mask, states, probes)

        np.testing.assert_allclose(gradient, numeric_gradient(initial_states[position], evaluate), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind, cell_options", CASES, ids=CASE_IDS)
def test_padded_batch_gradients_equal_each_sequence_alone(kind, cell_options):
    layer, _ = layer_pair(kind, cell_options, return_sequences=True, return_state=True)
    inputs, mask, initial_states, probes = problem(kind, seed=4)
    # The loss reads the real steps only: a padded step's output is the carried state, which a sequence
    # run alone does not return.
    probes[0] = probes[0] * tf.cast(mask, "float64")[..., None]
    padded = gradients(layer, inputs, mask, initial_states, probes)
    weight_sums = [np.zeros(gradient.shape) for gradient in padded[:3]]
    for row, length in enumerate(LENGTHS):
        alone = gradients(
            layer,
            inputs[row : row + 1, :length],
            None,
            [state[row : row + 1] for state in initial_states],
            [probes[0][row : row + 1, :length]] + [probe[row : row + 1] for probe in probes[1:]],
        )
        for total, gradient in zip(weight_sums, alone[:3]):
            total += gradient.numpy()
        np.testing.assert_allclose(padded[3][row, :length], alone[3][0], atol=1e-12)
        np.testing.assert_array_equal(padded[3][row, length:], 0.0)
        for got, want in zip(padded[4:], alone[4:]):
            np.testing.assert_allclose(got[row], want[0], atol=1e-12)
    for got, want in zip(padded[:3], weight_sums):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_gradient_path_says_which_backward_pass_a_call_takes():
    # "auto": from HAND_WRITTEN_GRADIENT_MIN_UNITS units on, 256 for each cell.
    assert layers.GRU(256, dropout=0.5).gradient_path(training=True) == "hand-written"
    for kind in ("GRU", "LSTM", "SimpleRNN"):
        assert CELLS[kind].HAND_WRITTEN_GRADIENT_MIN_UNITS == 256
        assert SEQUENCE_LAYERS[kind](128).gradient_path(training=True) == "automatic"
        assert SEQUENCE_LAYERS[kind](256).gradient_path(training=True) == "hand-written"
        assert SEQUENCE_LAYERS[kind](4, hand_written_gradient=True).gradient_path(training=True) == "hand-written"
    assert layers.LSTM(512).gradient_path(training=False) == "automatic"  # inference keeps no gates
    assert layers.GRU(256, recurrent_dropout=0.5).gradient_path(training=True) == "automatic"
    without = layers.GRU(256, hand_written_gradient=False)
    assert without.gradient_path(training=True) == "automatic"
    assert layers.GRU.from_config(without.get_config()).gradient_path(training=True) == "automatic"
    with pytest.raises(ValueError, match=r"hand_written_gradient.*Received: hand_written_gradient='always'"):
        layers.GRU(4, hand_written_gradient="always")


def test_hand_written_path_runs_the_cells_backward(monkeypatch):
    layer, _ = layer_pair("LSTM", {})
    inputs, mask, initial_states, probes = problem("LSTM")
    steps = []
    backward = layer.cell.backward

    def counting_backward(*arguments):
        steps.append(1)
        return backward(*arguments)

    monkeypatch.setattr(layer.cell, "backward", counting_backward)
    gradients(layer, inputs, mask, initial_states, probes)
    assert len(steps) == TIME  # eager: once per step


def test_recurrent_dropout_trains_through_the_generic_path():
    layer = layers.GRU(UNITS, recurrent_dropout=0.5, seed=0, hand_written_gradient=True)
    inputs = tf.random.normal((BATCH, TIME, INPUT_DIM), seed=0)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(layer(inputs, training=True))
    assert all(gradient is not None for gradient in tape.gradient(value, layer.trainable_variables))


@pytest.mark.parametrize("kind, cell_options", CASES[1:], ids=CASE_IDS[1:])
def test_jit_compiled_layer_pads_time_to_a_bucket_and_gives_the_same_numbers(kind, cell_options):
    options = {"return_sequences": True, "return_state": True, "go_backwards": True}
    default, _ = layer_pair(kind, cell_options, **options)
    compiled = SEQUENCE_LAYERS[kind](
        UNITS, dtype="float64", hand_written_gradient=True, jit_compile=True, **cell_options, **options
    )
    compiled.build((None, None, INPUT_DIM))
    compiled.set_weights(default.get_weights())
    assert TIME % time_loop.TIME_BUCKET != 0  # the compiled layer runs padded steps
    arguments = problem(kind, seed=5)
    for training in (False, True):

        @tf.function
        def results_and_gradients(layer):
            return layer(arguments[0], mask=arguments[1], training=training), gradients(layer, *arguments)

        want_results, want_gradients = results_and_gradients(default)
        got_results, got_gradients = results_and_gradients(compiled)
        for got, want in zip(got_results + got_gradients, want_results + want_gradients):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-12)
