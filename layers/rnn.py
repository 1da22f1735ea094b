"""The sequence layer: runs one of our cells over a whole (possibly masked) sequence."""

import keras
from keras import ops

from layers.time_loop import hand_written_gradient_loop, pad_time_to_bucket, run_time_loop


@keras.saving.register_keras_serializable(package="rnn_suite")
class RNN(keras.layers.Layer):
    """Runs a `RecurrentCell` along the time axis, like `keras.layers.RNN`.

    The time loop itself lives in `layers.time_loop`; this layer prepares its inputs, dropout masks,
    mask and initial states. Works inside `keras.layers.Bidirectional`.

    Args:
        cell: a `RecurrentCell` instance (or its serialized config).
        return_sequences: return `a<t>` for every step `(batch, time, units)` instead of the last one.
        return_state: also return the final states (`a`, and `c` for an LSTM).
        go_backwards: process the sequence in reverse; returned sequences are then in reverse order too.
        zero_output_for_mask: with `return_sequences`, masked steps output zeros instead of the carried
            state (`keras.layers.Bidirectional` turns this on).
        hand_written_gradient: "auto" (default) trains with the cell's hand-written backward pass where it
            was measured faster (`gradient_path`), True wherever it applies, False never (the generic loop,
            differentiated automatically: the tests' reference).
        jit_compile: compile the loops with XLA (default False): the hand-written path's two loops in
            training, the generic loop in inference, which then cannot be differentiated (automatic
            differentiation cannot cross into a compiled loop). Time is padded with masked steps to a
            multiple of `layers.time_loop.TIME_BUCKET`, so that XLA compiles once per bucket of lengths,
            not once per length; masked steps keep the state, so this is exact.

    Call arguments:
        sequences: `(batch, time, features)`.
        initial_state: optional list of `(batch, units)` tensors, one per state of the cell.
        mask: optional boolean `(batch, time)`; False steps leave the state unchanged.
        training: applies dropout when True.

    Example:
    >>> layer = RNN(LSTMCell(8), return_sequences=True)
    >>> layer(keras.ops.ones((2, 5, 3))).shape
    TensorShape([2, 5, 8])
    """

    def __init__(
        self,
        cell,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        zero_output_for_mask=False,
        hand_written_gradient="auto",
        jit_compile=False,
        **kwargs,
    ):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not hasattr(cell, "step") or not hasattr(cell, "project_inputs"):
            raise ValueError(
                "`cell` must be one of this package's cells (SimpleRNNCell, GRUCell, LSTMCell). "
                f"Received: cell={cell!r}"
            )
        super().__init__(**kwargs)
        if cell.dtype_policy.name != self.dtype_policy.name:
            raise ValueError(
                f"The cell and the layer must share a dtype policy. Received: cell dtype policy "
                f"{cell.dtype_policy.name!r}, layer dtype policy {self.dtype_policy.name!r}"
            )
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        if hand_written_gradient not in (True, False, "auto"):
            raise ValueError(
                f"`hand_written_gradient` must be True, False or 'auto'. "
                f"Received: hand_written_gradient={hand_written_gradient!r}"
            )
        self.hand_written_gradient = hand_written_gradient
        self.jit_compile = bool(jit_compile) and keras.backend.backend() == "tensorflow"
        self.stateful = False  # read by keras.layers.Bidirectional, as is `states`
        self.states = None
        self.supports_masking = True

    @property
    def units(self):
        return self.cell.units

    def build(self, sequences_shape, initial_state_shape=None):
        self.check_sequence_shape(sequences_shape)
        if not self.cell.built:
            self.cell.build((sequences_shape[0], sequences_shape[-1]))

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = ops.convert_to_tensor(sequences, dtype=self.compute_dtype)
        self.check_sequence_shape(sequences.shape)
        batch_size = ops.shape(sequences)[0]
        states = self.initial_states(initial_state, batch_size, sequences.shape[0])
        input_mask, recurrent_mask = self.cell.dropout_masks(sequences[:, 0, :], training)
        if input_mask is not None:
            sequences = sequences * ops.expand_dims(input_mask, 1)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        steps = ops.shape(sequences)[1]
        hand_written = self.gradient_path(training) == "hand-written"
        compiled = self.jit_compile and (hand_written or not training)
        if compiled:
            sequences, mask = pad_time_to_bucket(sequences, mask)

        if hand_written:
            weights = [
                ops.cast(weight, self.compute_dtype)
                for weight in (self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias)
            ]
            outputs, final_states = hand_written_gradient_loop(
                self.cell,
                sequences,
                states,
                weights,
                mask=mask,
                return_sequences=self.return_sequences,
                zero_output_for_mask=self.zero_output_for_mask,
                jit_compile=self.jit_compile,
            )
        else:
            # Each step projects its own input here: projecting the whole sequence first was measured
            # slower in training with automatic differentiation at B64 T100 D32 H128.
            recurrent_kernel = self.cell.prepare_recurrent_kernel(self.cell.recurrent_kernel)

            def step(inputs_t, states_t):
                return self.cell.step(self.cell.project_inputs(inputs_t), states_t, recurrent_mask, recurrent_kernel)

            loop = run_time_loop
            if compiled:
                import tensorflow as tf

                loop = tf.function(run_time_loop, jit_compile=True)
            outputs, final_states = loop(
                step,
                sequences,
                states,
                mask=mask,
                return_sequences=self.return_sequences,
                zero_output_for_mask=self.zero_output_for_mask,
            )
        if compiled and self.return_sequences:
            outputs = outputs[:, :steps]
        output = outputs if self.return_sequences else final_states[0]
        if self.return_state:
            return [output, *final_states]
        return output

    def gradient_path(self, training=False):
        """"hand-written" or "automatic": how a call with this `training` flag is differentiated.

        A training call on the TensorFlow backend takes the hand-written backward pass
        (`layers.time_loop.hand_written_gradient_loop`) when `hand_written_gradient` is True, or "auto"
        and the cell has at least its `HAND_WRITTEN_GRADIENT_MIN_UNITS` units (where it was measured
        faster, and within memory); never when it drops recurrent units (`recurrent_dropout` > 0), which
        the cells' `backward` does not cover. An inference call runs the generic loop, which keeps no gates
        for a backward pass that will not come. The generic loop is differentiated automatically.
        """
        if not training or not self.hand_written_gradient or keras.backend.backend() != "tensorflow":
            return "automatic"
        if self.cell.recurrent_dropout > 0:
            return "automatic"
        if self.hand_written_gradient == "auto" and self.cell.units < self.cell.HAND_WRITTEN_GRADIENT_MIN_UNITS:
            return "automatic"
        return "hand-written"

    def check_sequence_shape(self, shape):
        if len(shape) != 3 or shape[1] == 0:
            raise ValueError(
                f"{self.__class__.__name__} expects inputs of shape (batch, time, features) with at least "
                f"one time step. Received: shape {tuple(shape)}"
            )

    def initial_states(self, initial_state, batch_size, static_batch_size):
        """Validates a user's initial states, or makes zero states."""
        if initial_state is None:
            return self.cell.get_initial_state(batch_size)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != self.cell.state_count:
            raise ValueError(
                f"{self.__class__.__name__} expects {self.cell.state_count} initial state tensor(s) of shape "
                f"(batch, {self.units}). Received: {len(initial_state)} tensor(s)"
            )
        states = []
        for state in initial_state:
            state = ops.convert_to_tensor(state, dtype=self.compute_dtype)
            shape = tuple(state.shape)
            if (
                len(shape) != 2
                or (shape[1] is not None and shape[1] != self.units)
                or (shape[0] is not None and static_batch_size is not None and shape[0] != static_batch_size)
            ):
                raise ValueError(
                    f"{self.__class__.__name__} expects each initial state to have shape "
                    f"({static_batch_size}, {self.units}). Received: shape {shape}"
                )
            states.append(state)
        return states

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time = sequences_shape[0], sequences_shape[1]
        output_shape = (batch, time, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return (output_shape,) + ((batch, self.units),) * self.cell.state_count
        return output_shape

    def compute_mask(self, sequences, mask=None):
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * self.cell.state_count
        return output_mask

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "zero_output_for_mask": self.zero_output_for_mask,
            "hand_written_gradient": self.hand_written_gradient,
            "jit_compile": self.jit_compile,
        }
        base_config = super().get_config()
        return {**base_config, **config}


class CellLayer(RNN):
    """Base of `SimpleRNN`, `GRU` and `LSTM`: builds its `CELL` from the cell's own arguments, so the
    config is flat (`units`, `dropout`, ...) as in Keras' layers."""

    CELL = None
    CELL_ARGUMENTS = (
        "units",
        "dropout",
        "recurrent_dropout",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "seed",
    )
    LAYER_ARGUMENTS = (
        "return_sequences",
        "return_state",
        "go_backwards",
        "zero_output_for_mask",
        "hand_written_gradient",
        "jit_compile",
    )

    def __init__(self, units, **kwargs):
        cell_kwargs = {name: kwargs.pop(name) for name in self.CELL_ARGUMENTS if name in kwargs}
        layer_kwargs = {name: kwargs.pop(name) for name in self.LAYER_ARGUMENTS if name in kwargs}
        kwargs.pop("cell", None)
        cell = self.CELL(units, dtype=kwargs.get("dtype"), name=f"{self.CELL.__name__.lower()}", **cell_kwargs)
        super().__init__(cell, **layer_kwargs, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        config.update({name: cell_config[name] for name in self.CELL_ARGUMENTS})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
