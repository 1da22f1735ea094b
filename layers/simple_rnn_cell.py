"""The vanilla RNN cell of the notes."""

import keras
from keras import ops

from layers.cell import RecurrentCell

# The notes' g: tanh keeps a<t> in (-1, 1); ReLU does not saturate for positive inputs.
ACTIVATIONS = {"tanh": ops.tanh, "relu": ops.relu}


def validate_activation(activation):
    """The name of one of the notes' choices of g, or a ValueError naming them."""
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {sorted(ACTIVATIONS)}, the notes' choices of g. "
            f"Received: activation={activation!r}"
        )
    return activation


@keras.saving.register_keras_serializable(package="rnn_suite")
class SimpleRNNCell(RecurrentCell):
    """Vanilla RNN cell: `a<t> = g(Wa[a<t-1>, x<t>] + ba)`, with `g` tanh (default) or ReLU.

    Args:
        activation: "tanh" or "relu", the notes' `g`.
        Others: see `RecurrentCell` (units, dropout, recurrent_dropout, initializers, seed).

    Example:
    >>> cell = SimpleRNNCell(4, activation="relu")
    >>> output, states = cell(keras.ops.ones((2, 3)), [keras.ops.zeros((2, 4))])
    >>> output.shape
    TensorShape([2, 4])
    """

    GATES = ("a",)
    SAVED = ()  # its backward reads g'(z) from a<t> itself
    # Measured in training: at 128 units 1.2x the automatic gradient's speed but 1.85x Keras' memory (the
    # limit is 1.5x); at 512 units 1.3x and 0.7x. 256 is between.
    HAND_WRITTEN_GRADIENT_MIN_UNITS = 256

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = validate_activation(activation)

    @property
    def state_size(self):
        return [self.units]

    def forward(self, projected_inputs, states, recurrent_kernel, recurrent_mask=None):
        previous_activation = states[0]
        if recurrent_mask is not None:
            previous_activation = previous_activation * recurrent_mask
        g = ACTIVATIONS[self.activation]
        activation = g(projected_inputs + ops.matmul(previous_activation, recurrent_kernel))
        return [activation], []

    def backward(self, saved, previous_states, states, state_gradients, transposed_recurrent_kernel):
        """`dz = da * g'(z)`, read from `a<t>`: `1 - a<t>²` for tanh, `[a<t> > 0]` for ReLU; `da<t-1> = dz Wa^T`."""
        activation, activation_gradient = states[0], state_gradients[0]
        if self.activation == "tanh":
            z_gradient = activation_gradient * (1.0 - ops.square(activation))
        else:
            z_gradient = ops.where(activation > 0, activation_gradient, ops.zeros_like(activation_gradient))
        return z_gradient, [ops.matmul(z_gradient, transposed_recurrent_kernel)]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}
