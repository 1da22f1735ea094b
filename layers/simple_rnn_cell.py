"""The vanilla RNN cell of the notes."""

import keras
from keras import ops

from layers.cell import RecurrentCell


@keras.saving.register_keras_serializable(package="rnn_suite")
class SimpleRNNCell(RecurrentCell):
    """Vanilla RNN cell: `a<t> = tanh(Wa[a<t-1>, x<t>] + ba)`.

    Args: see `RecurrentCell` (units, dropout, recurrent_dropout, initializers, seed).

    Example:
    >>> cell = SimpleRNNCell(4)
    >>> output, states = cell(keras.ops.ones((2, 3)), [keras.ops.zeros((2, 4))])
    >>> output.shape
    TensorShape([2, 4])
    """

    GATES = ("a",)

    @property
    def state_size(self):
        return [self.units]

    def step(self, projected_inputs, states, recurrent_mask=None):
        previous_activation = states[0]
        if recurrent_mask is not None:
            previous_activation = previous_activation * recurrent_mask
        activation = ops.tanh(projected_inputs + ops.matmul(previous_activation, self.recurrent_kernel))
        return activation, [activation]
