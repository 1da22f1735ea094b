"""The notes' equations in plain NumPy, written independently of layers/, as the tests' reference.

Each `W` multiplies the column vector `[a<t-1>; x<t>]`; with a batch of row vectors that is
`concat([a, x], axis=1) @ W.T`.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def stacked(state, x):
    return np.concatenate([state, x], axis=1)


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def simple_rnn_step(weights, x, states, activation="tanh"):
    (a,) = states
    a = ACTIVATIONS[activation](stacked(a, x) @ weights["Wa"].T + weights["ba"])
    return [a]


def gru_step(weights, x, states):
    (c,) = states
    update = sigmoid(stacked(c, x) @ weights["Wu"].T + weights["bu"])
    relevance = sigmoid(stacked(c, x) @ weights["Wr"].T + weights["br"])
    candidate = np.tanh(stacked(relevance * c, x) @ weights["Wc"].T + weights["bc"])
    c = update * candidate + (1.0 - update) * c
    return [c]


def lstm_step(weights, x, states):
    a, c = states
    joined = stacked(a, x)
    candidate = np.tanh(joined @ weights["Wc"].T + weights["bc"])
    update = sigmoid(joined @ weights["Wu"].T + weights["bu"])
    forget = sigmoid(joined @ weights["Wf"].T + weights["bf"])
    output = sigmoid(joined @ weights["Wo"].T + weights["bo"])
    c = update * candidate + forget * c
    a = output * np.tanh(c)
    return [a, c]


STEPS = {"SimpleRNN": simple_rnn_step, "GRU": gru_step, "LSTM": lstm_step}
GATES = {"SimpleRNN": "a", "GRU": "urc", "LSTM": "ufco"}
STATE_COUNT = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2}


def run_sequence(kind, weights, inputs, initial_states=None, lengths=None, **step_options):
    """Runs a whole batch; a sequence of length L stops updating after step L. Returns every step's a<t>
    `(batch, time, units)` and the final states. `step_options` go to the step (`activation=` for SimpleRNN)."""
    batch, time, _ = inputs.shape
    units = weights["b" + GATES[kind][0]].shape[0]
    states = initial_states or [np.zeros((batch, units)) for _ in range(STATE_COUNT[kind])]
    states = [np.array(state, dtype=np.float64) for state in states]
    outputs = np.zeros((batch, time, units))
    for t in range(time):
        new_states = STEPS[kind](weights, inputs[:, t].astype(np.float64), states, **step_options)
        if lengths is not None:
            alive = (t < np.asarray(lengths))[:, None]
            new_states = [np.where(alive, new, old) for new, old in zip(new_states, states)]
        states = new_states
        outputs[:, t] = states[0]
    return outputs, states


def random_weights(kind, units, input_dim, rng, scale=0.5):
    weights = {}
    for gate in GATES[kind]:
        weights[f"W{gate}"] = rng.normal(0, scale, (units, units + input_dim))
        weights[f"b{gate}"] = rng.normal(0, scale, (units,))
    return weights
