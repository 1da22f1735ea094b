"""The full GRU cell of the notes, with memory cell `c`, relevance gate and update gate."""

import keras
from keras import ops

from layers.cell import RecurrentCell


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

    Args: see `RecurrentCell` (units, dropout, recurrent_dropout, initializers, seed).

    Example:
    >>> cell = GRUCell(4)
    >>> output, states = cell(keras.ops.ones((2, 3)), [keras.ops.zeros((2, 4))])
    >>> output.shape
    TensorShape([2, 4])
    """

    GATES = ("u", "r", "c")

    @property
    def state_size(self):
        return [self.units]

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
