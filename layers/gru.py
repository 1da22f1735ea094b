"""The GRU sequence layer (the notes' full GRU)."""

import keras

from layers.gru_cell import GRUCell
from layers.rnn import CellLayer


@keras.saving.register_keras_serializable(package="rnn_suite")
class GRU(CellLayer):
    """The notes' full GRU over a sequence (see `GRUCell` for the equations); the cell is `.cell`.

    Args: `units`, the cell's arguments (`dropout`, `recurrent_dropout`, initializers, `seed`) and the
    sequence arguments of `RNN` (`return_sequences`, `return_state`, `go_backwards`).

    Example:
    >>> GRU(8)(keras.ops.ones((2, 5, 3))).shape
    TensorShape([2, 8])
    """

    CELL = GRUCell
