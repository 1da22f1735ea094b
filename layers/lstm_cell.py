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
    SAVED = ("update_gate", "forget_gate", "candidate", "output_gate")
    # Measured in training: 0.9x the automatic gradient's speed at 128 units, 1.3x at 512; 256 is between.
    HAND_WRITTEN_GRADIENT_MIN_UNITS = 256

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

    def forward(self, projected_inputs, states, recurrent_kernel, recurrent_mask=None):
        previous_activation, previous_memory = states[0], states[1]
        if recurrent_mask is not None:
            previous_activation = previous_activation * recurrent_mask
        z = projected_inputs + ops.matmul(previous_activation, recurrent_kernel)
        update_z, forget_z, candidate_z, output_z = ops.split(z, 4, axis=-1)
        update_gate = ops.sigmoid(update_z)
        forget_gate = ops.sigmoid(forget_z)
        candidate = ops.tanh(candidate_z)
        output_gate = ops.sigmoid(output_z)
        memory = update_gate * candidate + forget_gate * previous_memory
        activation = output_gate * ops.tanh(memory)
        return [activation, memory], [update_gate, forget_gate, candidate, output_gate]

    def backward(self, saved, previous_states, states, state_gradients, transposed_recurrent_kernel):
        """With `da`, `dc` the gradients of `a<t>`, `c<t>` and `dc<t> = dc + da * Γo * (1 - tanh²(c<t>))`:

            dz_u = dc<t> * c~<t> * Γu(1 - Γu)       dz_f = dc<t> * c<t-1> * Γf(1 - Γf)
            dz_c = dc<t> * Γu * (1 - c~<t>²)        dz_o = da * tanh(c<t>) * Γo(1 - Γo)
            da<t-1> = dz Wa^T                       dc<t-1> = dc<t> * Γf
        """
        update_gate, forget_gate, candidate, output_gate = saved
        previous_memory = previous_states[1]
        memory = states[1]
        activation_gradient, memory_gradient = state_gradients
        memory_tanh = ops.tanh(memory)
        memory_gradient = memory_gradient + activation_gradient * output_gate * (1.0 - ops.square(memory_tanh))
        z_gradient = ops.concatenate(
            [
                memory_gradient * candidate * update_gate * (1.0 - update_gate),
                memory_gradient * previous_memory * forget_gate * (1.0 - forget_gate),
                memory_gradient * update_gate * (1.0 - ops.square(candidate)),
                activation_gradient * memory_tanh * output_gate * (1.0 - output_gate),
            ],
            axis=-1,
        )
        previous_activation_gradient = ops.matmul(z_gradient, transposed_recurrent_kernel)
        return z_gradient, [previous_activation_gradient, memory_gradient * forget_gate]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
