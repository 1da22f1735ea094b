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
    SAVED = ("gates", "candidate")  # gates: Γu and Γr fused
    # Measured in training (benchmarks/rnn_levers.py): 0.92-1.0x the automatic gradient's speed at 128 units,
    # 1.26-1.3x at 512; 256 is between.
    HAND_WRITTEN_GRADIENT_MIN_UNITS = 256

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

    def prepare_recurrent_kernel(self, recurrent_kernel):
        """`(gates_kernel, candidate_kernel)`: splitting columns copies them, so once, not at every step."""
        return ops.split(recurrent_kernel, [2 * self.units], axis=-1)

    def forward(self, projected_inputs, states, recurrent_kernel, recurrent_mask=None):
        previous_memory = states[0]
        masked_memory = previous_memory if recurrent_mask is None else previous_memory * recurrent_mask
        gates_z, candidate_x = ops.split(projected_inputs, [2 * self.units], axis=-1)
        gates_kernel, candidate_kernel = recurrent_kernel
        gates = ops.sigmoid(gates_z + ops.matmul(masked_memory, gates_kernel))
        update_gate, relevance_gate = ops.split(gates, 2, axis=-1)
        candidate = ops.tanh(candidate_x + ops.matmul(relevance_gate * masked_memory, candidate_kernel))
        memory = update_gate * candidate + (1.0 - update_gate) * previous_memory
        return [memory], [gates, candidate]

    def backward(self, saved, previous_states, states, state_gradients, transposed_recurrent_kernel):
        """With `dc` the gradient of `c<t>` and `Wa_u`, `Wa_r`, `Wa_c` the `c<t-1>` halves of the gates:

            dz_c = dc * Γu * (1 - c~<t>²)           dz_u = dc * (c~<t> - c<t-1>) * Γu(1 - Γu)
            d(Γr * c<t-1>) = dz_c Wa_c^T            dz_r = d(Γr * c<t-1>) * c<t-1> * Γr(1 - Γr)
            dc<t-1> = dc * (1 - Γu) + d(Γr * c<t-1>) * Γr + [dz_u, dz_r] [Wa_u, Wa_r]^T
        """
        gates, candidate = saved
        update_gate, relevance_gate = ops.split(gates, 2, axis=-1)
        previous_memory, memory_gradient = previous_states[0], state_gradients[0]
        gates_kernel_transposed, candidate_kernel_transposed = ops.split(
            transposed_recurrent_kernel, [2 * self.units], axis=0
        )
        candidate_z_gradient = memory_gradient * update_gate * (1.0 - ops.square(candidate))
        update_z_gradient = memory_gradient * (candidate - previous_memory) * update_gate * (1.0 - update_gate)
        relevant_memory_gradient = ops.matmul(candidate_z_gradient, candidate_kernel_transposed)
        relevance_z_gradient = relevant_memory_gradient * previous_memory * relevance_gate * (1.0 - relevance_gate)
        gates_z_gradient = ops.concatenate([update_z_gradient, relevance_z_gradient], axis=-1)
        previous_memory_gradient = (
            memory_gradient * (1.0 - update_gate)
            + relevant_memory_gradient * relevance_gate
            + ops.matmul(gates_z_gradient, gates_kernel_transposed)
        )
        return ops.concatenate([gates_z_gradient, candidate_z_gradient], axis=-1), [previous_memory_gradient]

    def recurrent_kernel_gradient(self, previous_states, saved, z_gradients):
        """The candidate's `z` reads `Γr * c<t-1>` where the gates' read `c<t-1>`."""
        previous_memory = previous_states[0]
        gates, _ = saved
        relevance_gate = gates[:, self.units :]
        gates_z_gradients, candidate_z_gradients = ops.split(z_gradients, [2 * self.units], axis=-1)
        return ops.concatenate(
            [
                ops.matmul(ops.transpose(previous_memory), gates_z_gradients),
                ops.matmul(ops.transpose(relevance_gate * previous_memory), candidate_z_gradients),
            ],
            axis=-1,
        )

    def get_config(self):
        return {**super().get_config(), "update_gate_bias": self.update_gate_bias}
