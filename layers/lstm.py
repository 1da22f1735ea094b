"""The LSTM sequence layer."""

import keras

from layers.lstm_cell import LSTMCell
from layers.rnn import CellLayer


@keras.saving.register_keras_serializable(package="rnn_suite")
class LSTM(CellLayer):
    """LSTM over a sequence (see `LSTMCell` for the equations); the cell is `.cell`.

    Args: `units`, `unit_forget_bias` (default True: `bf` starts at 1), the cell's arguments (`dropout`,
    `recurrent_dropout`, initializers, `seed`) and the sequence arguments of `RNN` (`return_sequences`,
    `return_state`, `go_backwards`).

    Example:
    >>> outputs, a, c = LSTM(8, return_sequences=True, return_state=True)(keras.ops.ones((2, 5, 3)))
    >>> outputs.shape, a.shape, c.shape
    (TensorShape([2, 5, 8]), TensorShape([2, 8]), TensorShape([2, 8]))
    """

    CELL = LSTMCell
    CELL_ARGUMENTS = CellLayer.CELL_ARGUMENTS + ("unit_forget_bias",)
