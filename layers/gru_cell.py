"""The full GRU cell of the notes, with memory cell `c`, relevance gate and update gate."""

import math
import numbers

import keras
from keras import ops

from layers.cell import RecurrentCell


def validate_bias(name, value):
    """A gate's initial bias is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite float. Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="rnn_suite")
class GRUCell(RecurrentCell):
    """Full GRU cell, exactly as in the notes:

        Γu      = σ(Wu[c<t-1>, x<t>] + bu)              update gate
        Γr      = σ(Wr[c<t-1>, x<t>] + br)              relevance gate
        c~<t>   = tanh(Wc[Γr * c<t-1>, x<t>] + bc)      candidate
        c<t>    = Γu * c~<t> + (1 - Γu) * c<t-1>        memory
        a<t>    = c<t>

    Γu = 1 keeps the new candidate. Keras' built-in GRU uses the opposite convention for its update gate
    (`z = 1 - Γu`); with `reset_after=False` it is this cell once `Wz = -Wu`, `bz = -bu`.
    Fused gate order: `u`, `r`, `c`.

    Args:
        update_gate_bias: added to the initial `bu` (default 0.0: the notes' plain start). With `bu` = 0,
            Γu starts near 0.5 and halves the old memory at every step, so the gradient vanishes within
            tens of steps; a negative value (e.g. -3, Γu ≈ 0.05) makes `c<t>` carry its memory at first,
            the GRU's version of the LSTM's forget bias.
        Others: see `RecurrentCell` (units, dropout, recurrent_dropout, initializers, seed).

    Example:
    >>> cell = GRUCell(4, update_gate_bias=-3.0)
    >>> output, states = cell(keras.ops.ones((2, 3)), [keras.ops.zeros((2, 4))])
    >>> output.shape
    TensorShape([2, 4])
    """

    GATES = ("u", "r", "c")

    def __init__(self, units, update_gate_bias=0.0, **kwargs):
        super().__init__(units, **kwargs)
        self.update_gate_bias = validate_bias("update_gate_bias", update_gate_bias)

    @property
    def state_size(self):
        return [self.units]

    def fused_bias_initializer(self, shape, dtype=None):
        bias = super().fused_bias_initializer(shape, dtype=dtype)
        if self.update_gate_bias == 0.0:
            return bias
        # An offset added to one draw of the initializer, so the default draws exactly what it always did.
        units = self.units
        offset = ops.concatenate(
            [ops.full((units,), self.update_gate_bias, dtype=dtype), ops.zeros((2 * units,), dtype=dtype)]
        )
        return bias + offset

    def step(self, projected_inputs, states, recurrent_mask=None):
        previous_memory = states[0]
        masked_memory = previous_memory if recurrent_mask is None else previous_memory * recurrent_mask
        gates_z, candidate_x = ops.split(projected_inputs, [2 * self.units], axis=-1)
        gates_kernel, candidate_kernel = ops.split(self.recurrent_kernel, [2 * self.units], axis=-1)
        gates = ops.sigmoid(gates_z + ops.matmul(masked_memory, gates_kernel))
        update_gate, relevance_gate = ops.split(gates, 2, axis=-1)
        candidate = ops.tanh(candidate_x + ops.matmul(relevance_gate * masked_memory, candidate_kernel))
        memory = update_gate * candidate + (1.0 - update_gate) * previous_memory
        return memory, [memory]

    def get_config(self):
        return {**super().get_config(), "update_gate_bias": self.update_gate_bias}
