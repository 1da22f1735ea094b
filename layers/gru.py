"""The GRU sequence layer (the notes' full GRU)."""

import keras

from layers.gru_cell import GRUCell
from layers.rnn import CellLayer


@keras.saving.register_keras_serializable(package="rnn_suite")
class GRU(CellLayer):
    """The notes' full GRU over a sequence (see `GRUCell` for the equations); the cell is `.cell`.

    Args: `units`, `update_gate_bias` (added to the initial `bu`; default 0.0, negative keeps the memory
    early in training), the cell's arguments (`dropout`, `recurrent_dropout`, initializers, `seed`) and
    the sequence arguments of `RNN` (`return_sequences`, `return_state`, `go_backwards`).

    Example:
    >>> GRU(8)(keras.ops.ones((2, 5, 3))).shape
    TensorShape([2, 8])
    """

    CELL = GRUCell
    CELL_ARGUMENTS = CellLayer.CELL_ARGUMENTS + ("update_gate_bias",)
