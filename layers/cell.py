"""Base class of the recurrent cells: weight storage, notation view, dropout masks, config."""

import numbers

import keras
import numpy as np
from keras import ops

# keras.layers.RNN draws dropout masks once per sequence only for cells of this (non-public) class.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell


def validate_fraction(name, value):
    """Dropout rates are fractions in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """A cell owns its weights and computes ONE time step.

    Every gate `k` of the notes has a matrix `Wk` of shape `(units, units + input_dim)` that multiplies
    the column vector `[a<t-1>; x<t>]` (state first) and a bias `bk` of shape `(units,)`. For speed the
    gates are stored fused, Keras-style: `kernel` `(input_dim, gates * units)` holds the `x<t>` halves,
    `recurrent_kernel` `(units, gates * units)` the `a<t-1>` halves, `bias` `(gates * units,)`, gate
    blocks in the order of `GATES`. `notation_weights()` and `set_notation_weights()` translate.

    A step is split in two: `project_inputs(x)` computes `x W_x + b` for every gate (it also accepts a
    whole sequence), and `step(projected, states)` does the recurrent rest. `call(inputs, states)` chains
    the two, so a cell also works alone or inside `keras.layers.RNN`. The cell's output is always `a<t>`,
    its first state.

    For the hand-written gradient of a whole sequence (`layers.time_loop`), a cell also gives its step's
    derivatives: `forward` is the step returning what its backward reads (the gates), `backward` carries
    the state gradients one step back and returns the gradient of the step's `z = x W_x + a W_a + b`, and
    `recurrent_kernel_gradient` is `W_a`'s gradient from all steps at once.

    Dropout draws one input mask and one recurrent mask per sequence and applies them at every step: our
    `RNN` draws them before its loop (`dropout_masks`), and `keras.layers.RNN` through the hooks of its
    `DropoutRNNCell` protocol (`get_dropout_mask`, ..., `reset_dropout_mask`), which it calls before and
    after its loop. A cell called alone draws new masks at every call: each call is its own sequence.

    Subclasses set `GATES` (notation letters, fused order) and `SAVED`, and implement `forward`,
    `backward` and `state_size`.

    Args:
        units: positive int, the size of `a<t>`.
        dropout: fraction of the input units to drop (the same units at every step of a sequence).
        recurrent_dropout: fraction of the units of `a<t-1>` to drop (the same at every step of a sequence).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the fused storage.
        seed: seed of the dropout masks.
    """

    GATES = ()
    SAVED = ()  # names of the tensors `forward` saves for `backward`, in its order
    # A sequence layer trains with the hand-written backward pass from this many units on (see
    # `RNN.gradient_path`); each cell sets it from `benchmarks/rnn_speed.py`'s measurements.
    HAND_WRITTEN_GRADIENT_MIN_UNITS = 0

    def __init__(
        self,
        units,
        dropout=0.0,
        recurrent_dropout=0.0,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f"`units` must be a positive integer. Received: units={units!r}"
            )
        self.units = int(units)
        self.dropout = validate_fraction("dropout", dropout)
        self.recurrent_dropout = validate_fraction("recurrent_dropout", recurrent_dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The masks of the sequence keras.layers.RNN is running, between its hooks' calls; None otherwise.
        self.sequence_input_mask = None
        self.sequence_recurrent_mask = None

    @property
    def state_size(self):
        raise NotImplementedError

    @property
    def output_size(self):
        return self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to {self.__class__.__name__} must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.input_dim = int(input_dim)
        fused = len(self.GATES) * self.units
        self.kernel = self.add_weight(
            shape=(self.input_dim, fused), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, fused), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(fused,), initializer=self.fused_bias_initializer, name="bias")

    def fused_bias_initializer(self, shape, dtype=None):
        """The initial fused bias; a cell that starts one gate differently overrides this."""
        return self.bias_initializer(shape, dtype=dtype)

    def project_inputs(self, inputs, kernel=None, bias=None):
        """`x W_x + b` for every gate, fused: `(..., input_dim) -> (..., gates * units)`; the cell's own
        weights unless given (the hand-written gradient passes them as tensors)."""
        kernel = self.kernel if kernel is None else kernel
        bias = self.bias if bias is None else bias
        return ops.matmul(inputs, kernel) + bias

    def step(self, projected_inputs, states, recurrent_mask=None, recurrent_kernel=None):
        """One time step from projected inputs; returns `(a<t>, new_states)`. A loop passes
        `recurrent_kernel` from `prepare_recurrent_kernel`, made once for all its steps."""
        if recurrent_kernel is None:
            recurrent_kernel = self.prepare_recurrent_kernel(self.recurrent_kernel)
        new_states, _ = self.forward(projected_inputs, states, recurrent_kernel, recurrent_mask)
        return new_states[0], new_states

    def prepare_recurrent_kernel(self, recurrent_kernel):
        """`W_a` in the form `forward` reads (the GRU splits it into its blocks), made once per sequence."""
        return recurrent_kernel

    def forward(self, projected_inputs, states, recurrent_kernel, recurrent_mask=None):
        """The step's equations: `(new_states, saved)`, `saved` a list of the step's tensors that `backward`
        reads (the gates); `recurrent_kernel` as `prepare_recurrent_kernel` made it."""
        raise NotImplementedError

    def backward(self, saved, previous_states, states, state_gradients, transposed_recurrent_kernel):
        """One step back: from the gradients of the step's new `states`, `(z_gradient, previous_state_gradients)`
        where `z_gradient` `(batch, gates * units)` is that of the fused `z = x W_x + a<t-1> W_a + b`."""
        raise NotImplementedError

    def recurrent_kernel_gradient(self, previous_states, saved, z_gradients):
        """`W_a`'s gradient from every step at once, one product over `(time * batch)` rows: each gate's
        `z` reads `a<t-1>`, so it is `a<t-1>^T dz`."""
        return ops.matmul(ops.transpose(previous_states[0]), z_gradients)

    def call(self, inputs, states, training=False):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        input_mask, recurrent_mask = self.dropout_masks(inputs, training)
        if input_mask is not None:
            inputs = inputs * input_mask
        return self.step(self.project_inputs(inputs), states, recurrent_mask)

    def dropout_masks(self, inputs, training):
        """Inverted-dropout masks `(batch, input_dim)` and `(batch, units)` for one sequence, or None when
        unused: the ones `keras.layers.RNN` drew for the sequence it is running, else new ones."""
        if not training:
            return None, None
        input_mask = self.sequence_input_mask
        if input_mask is None and self.dropout > 0:
            input_mask = self.new_input_mask(inputs)
        recurrent_mask = self.sequence_recurrent_mask
        if recurrent_mask is None and self.recurrent_dropout > 0:
            recurrent_mask = self.new_recurrent_mask(inputs)
        return input_mask, recurrent_mask

    def new_input_mask(self, inputs):
        return self.sample_mask(ops.shape(inputs), self.dropout, inputs.dtype)

    def new_recurrent_mask(self, like):
        """A `(batch, units)` mask; `like` is any `(batch, ...)` tensor of the sequence's dtype."""
        return self.sample_mask((ops.shape(like)[0], self.units), self.recurrent_dropout, like.dtype)

    def sample_mask(self, shape, rate, dtype):
        """Kept units are 1 / (1 - rate), dropped ones 0, so the expected input is unchanged."""
        ones = ops.ones(shape, dtype=dtype)
        return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)

    # The DropoutRNNCell protocol: keras.layers.RNN calls the two getters before its loop (also at
    # inference, where `call` ignores the masks) and the two resets after it.
    def get_dropout_mask(self, step_input):
        if self.sequence_input_mask is None and self.dropout > 0:
            self.sequence_input_mask = self.new_input_mask(step_input)
        return self.sequence_input_mask

    def get_recurrent_dropout_mask(self, step_input):
        if self.sequence_recurrent_mask is None and self.recurrent_dropout > 0:
            self.sequence_recurrent_mask = self.new_recurrent_mask(step_input)
        return self.sequence_recurrent_mask

    def reset_dropout_mask(self):
        self.sequence_input_mask = None

    def reset_recurrent_dropout_mask(self):
        self.sequence_recurrent_mask = None

    def get_initial_state(self, batch_size):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in range(self.state_count)]

    @property
    def state_count(self):
        size = self.state_size
        return len(size) if isinstance(size, (list, tuple)) else 1

    def notation_weights(self):
        """The weights in the notes' notation: `{"Wk": (units, units + input_dim), "bk": (units,)}`."""
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__} has no weights yet: call it on an input or build it first."
            )
        kernel = ops.convert_to_numpy(self.kernel)
        recurrent_kernel = ops.convert_to_numpy(self.recurrent_kernel)
        bias = ops.convert_to_numpy(self.bias)
        weights = {}
        for index, gate in enumerate(self.GATES):
            block = slice(index * self.units, (index + 1) * self.units)
            weights[f"W{gate}"] = np.concatenate([recurrent_kernel[:, block].T, kernel[:, block].T], axis=1)
            weights[f"b{gate}"] = bias[block].copy()
        return weights

    def set_notation_weights(self, weights):
        """Sets the fused storage from `{"Wk": ..., "bk": ...}` as `notation_weights()` returns it."""
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__} has no weights yet: call it on an input or build it first."
            )
        expected = sorted(f"{kind}{gate}" for gate in self.GATES for kind in "Wb")
        if not isinstance(weights, dict) or sorted(weights) != expected:
            received = sorted(weights) if isinstance(weights, dict) else type(weights).__name__
            raise ValueError(
                f"{self.__class__.__name__}.set_notation_weights expects the keys {expected}. "
                f"Received: {received}"
            )
        kernel_shape = (self.units, self.units + self.input_dim)
        dtype = keras.backend.standardize_dtype(self.kernel.dtype)
        kernel = np.empty((self.input_dim, len(self.GATES) * self.units), dtype=dtype)
        recurrent_kernel = np.empty((self.units, len(self.GATES) * self.units), dtype=dtype)
        bias = np.empty((len(self.GATES) * self.units,), dtype=dtype)
        for index, gate in enumerate(self.GATES):
            matrix = np.asarray(weights[f"W{gate}"], dtype=dtype)
            vector = np.asarray(weights[f"b{gate}"], dtype=dtype)
            if matrix.shape != kernel_shape:
                raise ValueError(
                    f"W{gate} must have shape (units, units + input_dim) = {kernel_shape}. "
                    f"Received: shape {matrix.shape}"
                )
            if vector.shape != (self.units,):
                raise ValueError(
                    f"b{gate} must have shape (units,) = ({self.units},). Received: shape {vector.shape}"
                )
            block = slice(index * self.units, (index + 1) * self.units)
            recurrent_kernel[:, block] = matrix[:, : self.units].T
            kernel[:, block] = matrix[:, self.units :].T
            bias[block] = vector
        self.kernel.assign(kernel)
        self.recurrent_kernel.assign(recurrent_kernel)
        self.bias.assign(bias)

    def get_config(self):
        config = {
            "units": self.units,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}
