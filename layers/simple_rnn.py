"""The vanilla RNN sequence layer."""

import keras

from layers.rnn import CellLayer
from layers.simple_rnn_cell import SimpleRNNCell


@keras.saving.register_keras_serializable(package="rnn_suite")
class SimpleRNN(CellLayer):
    """Vanilla RNN over a sequence, `a<t> = g(Wa[a<t-1>, x<t>] + ba)` at each step; the cell is `.cell`.

    Args: `units`, `activation` ("tanh", the default, or "relu": the notes' `g`), the cell's arguments
    (`dropout`, `recurrent_dropout`, initializers, `seed`) and the sequence arguments of `RNN`
    (`return_sequences`, `return_state`, `go_backwards`).

    Example:
    >>> SimpleRNN(8, activation="relu", return_sequences=True)(keras.ops.ones((2, 5, 3))).shape
    TensorShape([2, 5, 8])
    """

    CELL = SimpleRNNCell
    CELL_ARGUMENTS = CellLayer.CELL_ARGUMENTS + ("activation",)
