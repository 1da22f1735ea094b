"""Dropout masks: one per sequence in our RNN and in keras.layers.RNN, at the configured rate and scale."""

import keras
import numpy as np
import pytest

import layers
from tests import numpy_reference
from tests.test_cells import CELLS, KINDS, UNITS, keras_builtin_with_mapped_weights, random_inputs

RATE = 0.3
# 200 sequences of 50 units: the dropped fraction of one mask has a standard deviation of 0.005 around RATE.
BATCH, WIDTH, TIME = 200, 50, 6
LOOPS = {"ours": layers.RNN, "keras": keras.layers.RNN}


def mask_revealing_layer(loop, dropout=0.0, recurrent_dropout=0.0, seed=0):
    """A ReLU SimpleRNN whose steps show its masks: `Wa = [recurrent part, input part]` is [0, I] for the
    input mask (a<t> = m_x * x<t>) and [I, 0] for the recurrent mask (a<t> = m_a * a<t-1>)."""
    cell = layers.SimpleRNNCell(
        WIDTH, activation="relu", dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed
    )
    layer = LOOPS[loop](cell, return_sequences=True)
    layer.build((None, None, WIDTH))
    identity, zeros = np.eye(WIDTH), np.zeros((WIDTH, WIDTH))
    matrix = np.concatenate([zeros, identity] if dropout else [identity, zeros], axis=1)
    cell.set_notation_weights({"Wa": matrix, "ba": np.zeros(WIDTH)})
    return layer


def check_is_a_dropout_mask(mask):
    """Kept units are scaled to 1 / (1 - RATE) (inverted dropout), and about RATE of them are dropped."""
    kept = mask != 0
    np.testing.assert_allclose(mask[kept], 1.0 / (1.0 - RATE), rtol=1e-6)
    assert abs((1.0 - kept.mean()) - RATE) < 0.02, f"dropped fraction {1.0 - kept.mean():.3f}, rate {RATE}"


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_input_dropout_uses_one_mask_per_sequence(loop):
    layer = mask_revealing_layer(loop, dropout=RATE)
    constant = np.ones((BATCH, TIME, WIDTH), "float32")
    steps = np.asarray(layer(constant, training=True))  # a<t> is the input mask itself at every step
    mask = steps[:, 0]
    check_is_a_dropout_mask(mask)
    for t in range(1, TIME):
        np.testing.assert_array_equal(steps[:, t], mask)
    assert not np.array_equal(mask[0], mask[1])  # each sequence of the batch has its own mask
    assert not np.array_equal(np.asarray(layer(constant, training=True))[:, 0], mask)  # and each call
    np.testing.assert_array_equal(layer(constant, training=False), constant)  # none at inference


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_recurrent_dropout_uses_one_mask_per_sequence(loop):
    layer = mask_revealing_layer(loop, recurrent_dropout=RATE)
    zeros = np.zeros((BATCH, TIME, WIDTH), "float32")
    start = [np.ones((BATCH, WIDTH), "float32")]
    steps = np.asarray(layer(zeros, initial_state=start, training=True), "float64")
    mask = steps[:, 0]  # a<1> = m_a * a<0> = m_a
    check_is_a_dropout_mask(mask)
    # The same mask at every step gives a<t> = m_a ** t; a new mask per step would drop more units each step.
    for t in range(1, TIME):
        np.testing.assert_allclose(steps[:, t], mask ** (t + 1), rtol=1e-5)
    assert not np.array_equal(mask[0], mask[1])
    again = np.asarray(layer(zeros, initial_state=start, training=True))[:, 0]
    assert not np.array_equal(again, mask)
    np.testing.assert_array_equal(layer(zeros, initial_state=start, training=False), 1.0)


def seeded_layer(loop, kind, weights, **cell_options):
    cell = CELLS[kind](UNITS, dropout=0.4, recurrent_dropout=RATE, seed=7, **cell_options)
    layer = LOOPS[loop](cell, return_sequences=True)
    layer.build((None, None, weights["W" + numpy_reference.GATES[kind][0]].shape[1] - UNITS))
    cell.set_notation_weights(weights)
    return layer


@pytest.mark.parametrize("kind", KINDS)
def test_keras_rnn_and_our_rnn_drop_the_same_units(kind):
    """Both loops draw the input mask, then the recurrent mask, once per call from the cell's seed: with the
    same seed and weights they give the same training outputs, call after call."""
    weights = numpy_reference.random_weights(kind, UNITS, random_inputs().shape[-1], np.random.default_rng(0))
    ours, builtin_loop = (seeded_layer(loop, kind, weights) for loop in ("ours", "keras"))
    x = random_inputs()
    for _ in range(2):
        trained = ours(x, training=True)
        np.testing.assert_allclose(trained, builtin_loop(x, training=True), atol=1e-6)
        assert not np.allclose(trained, ours(x, training=False), atol=1e-3)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_dropout_matches_keras_simple_rnn(activation):
    """Keras' own SimpleRNN draws its masks once per sequence from the same seed and applies them as ours."""
    x = random_inputs()
    weights = numpy_reference.random_weights("SimpleRNN", UNITS, x.shape[-1], np.random.default_rng(1))
    ours = layers.SimpleRNN(UNITS, activation=activation, dropout=0.4, recurrent_dropout=RATE, seed=7,
                            return_sequences=True)  # fmt: skip
    ours.build((None, None, x.shape[-1]))
    ours.cell.set_notation_weights(weights)
    builtin = keras_builtin_with_mapped_weights(
        "SimpleRNN", weights, activation=activation, dropout=0.4, recurrent_dropout=RATE, seed=7
    )
    for _ in range(2):
        np.testing.assert_allclose(ours(x, training=True), builtin(x, training=True), atol=1e-5)


def test_a_cell_called_alone_draws_new_masks_at_each_call():
    cell = layers.SimpleRNNCell(WIDTH, activation="relu", dropout=RATE, seed=0)
    cell.build((None, WIDTH))
    cell.set_notation_weights({"Wa": np.concatenate([np.zeros((WIDTH, WIDTH)), np.eye(WIDTH)], 1), "ba": np.zeros(WIDTH)})
    ones, state = np.ones((BATCH, WIDTH), "float32"), [np.zeros((BATCH, WIDTH), "float32")]
    first, _ = cell(ones, state, training=True)
    second, _ = cell(ones, state, training=True)
    check_is_a_dropout_mask(np.asarray(first))
    assert not np.array_equal(first, second)
    assert cell.sequence_input_mask is None  # nothing left behind for a later keras.layers.RNN call
