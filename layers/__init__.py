"""Recurrent layers built exactly from the course notes' equations.

`SimpleRNNCell`, `GRUCell` and `LSTMCell` compute one step; `SimpleRNN`, `GRU` and `LSTM` (or `RNN`
around any of our cells) run them over a sequence; `Bidirectional` is Keras' own wrapper, which our
layers work inside; `DeepRNN` stacks them.
"""

from keras.layers import Bidirectional

from layers.cell import RecurrentCell
from layers.deep_rnn import LAYER_TYPES, DeepRNN, recurrent_layer_class
from layers.gru import GRU
from layers.gru_cell import GRUCell
from layers.lstm import LSTM
from layers.lstm_cell import LSTMCell
from layers.rnn import RNN
from layers.simple_rnn import SimpleRNN
from layers.simple_rnn_cell import SimpleRNNCell

__all__ = [
    "Bidirectional",
    "DeepRNN",
    "GRU",
    "GRUCell",
    "LAYER_TYPES",
    "LSTM",
    "LSTMCell",
    "RNN",
    "RecurrentCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "recurrent_layer_class",
]
