"""The LSTM cell of the notes, with update, forget and output gates."""

import keras
from keras import ops

from layers.cell import RecurrentCell


@keras.saving.register_keras_serializable(package="rnn_suite")
class LSTMCell(RecurrentCell):
    """LSTM cell, exactly as in the notes:

        c~<t>   = tanh(Wc[a<t-1>, x<t>] + bc)           candidate
        Γu      = σ(Wu[a<t-1>, x<t>] + bu)              update gate
        Γf      = σ(Wf[a<t-1>, x<t>] + bf)              forget gate
        Γo      = σ(Wo[a<t-1>, x<t>] + bo)              output gate
        c<t>    = Γu * c~<t> + Γf * c<t-1>              memory
        a<t>    = Γo * tanh(c<t>)

    States are `[a<t>, c<t>]`. Fused gate order `u`, `f`, `c`, `o` (Keras' `i`, `f`, `c`, `o`).

    Args:
        unit_forget_bias: start `bf` at 1 instead of 0 (default True), so the memory is kept at the
            start of training and gradients reach far back; Jozefowicz et al. (2015) found it helps.
        Others: see `RecurrentCell` (units, dropout, recurrent_dropout, initializers, seed).

    Example:
    >>> cell = LSTMCell(4)
    >>> output, states = cell(keras.ops.ones((2, 3)), [keras.ops.zeros((2, 4))] * 2)
    >>> [s.shape for s in states]
    [TensorShape([2, 4]), TensorShape([2, 4])]
    """

    GATES = ("u", "f", "c", "o")

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def fused_bias_initializer(self, shape, dtype=None):
        if not self.unit_forget_bias:
            return super().fused_bias_initializer(shape, dtype=dtype)
        # An initializer, not an assignment after build: build may run inside a traced function.
        units = self.units
        return ops.concatenate(
            [
                self.bias_initializer((units,), dtype=dtype),
                ops.ones((units,), dtype=dtype),
                self.bias_initializer((2 * units,), dtype=dtype),
            ]
        )

    def step(self, projected_inputs, states, recurrent_mask=None):
        previous_activation, previous_memory = states[0], states[1]
        if recurrent_mask is not None:
            previous_activation = previous_activation * recurrent_mask
        z = projected_inputs + ops.matmul(previous_activation, self.recurrent_kernel)
        update_z, forget_z, candidate_z, output_z = ops.split(z, 4, axis=-1)
        update_gate = ops.sigmoid(update_z)
        forget_gate = ops.sigmoid(forget_z)
        candidate = ops.tanh(candidate_z)
        output_gate = ops.sigmoid(output_z)
        memory = update_gate * candidate + forget_gate * previous_memory
        activation = output_gate * ops.tanh(memory)
        return activation, [activation, memory]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
