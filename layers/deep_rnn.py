"""Deep RNNs: N recurrent layers stacked, optionally bidirectional, with a dense head on top."""

import keras

from layers.gru import GRU
from layers.lstm import LSTM
from layers.simple_rnn import SimpleRNN

LAYER_TYPES = {"simple_rnn": SimpleRNN, "gru": GRU, "lstm": LSTM}
MERGE_MODES = ("concat", "sum", "ave", "mul")


def recurrent_layer_class(name):
    """Our sequence layer for a cell name: "simple_rnn", "gru" or "lstm". The one place the names are mapped."""
    if name not in LAYER_TYPES:
        raise ValueError(f"The cell must be one of {sorted(LAYER_TYPES)}. Received: {name!r}")
    return LAYER_TYPES[name]


@keras.saving.register_keras_serializable(package="rnn_suite")
class DeepRNN(keras.layers.Layer):
    """A deep RNN as in the notes: recurrent layers stacked, then a few dense layers.

    Layer `l` reads the sequence `a[l-1]<t>` that layer `l-1` returns; every layer but the last returns
    sequences. With `bidirectional=True` each layer is a `keras.layers.Bidirectional` around our layer,
    so `ŷ<t>` sees `[a→<t>, a←<t>]`. Masks pass through every layer.

    "3 layers of bidirectional LSTM": `DeepRNN("lstm", units=[64, 64, 64], bidirectional=True)`.

    Args:
        layer_type: "simple_rnn", "gru" or "lstm".
        units: one int per recurrent layer.
        bidirectional: wrap each recurrent layer in `keras.layers.Bidirectional`.
        merge_mode: how a bidirectional layer joins its directions ("concat", "sum", "ave", "mul").
        return_sequences: the top recurrent layer returns every step (for many-to-many) or the last.
        dropout, recurrent_dropout: passed to every recurrent layer.
        layer_options: more arguments of every recurrent layer, e.g. `{"activation": "relu"}` for
            "simple_rnn" or `{"update_gate_bias": -3.0}` for "gru"; the layer checks them.
        head_units: sizes of the dense layers (ReLU) on top of the recurrent stack: on every step's
            output with `return_sequences`, else on the last.
        output_units: size of a last dense layer (None for none), with `output_activation`.

    Example:
    >>> model_body = DeepRNN("lstm", units=[16, 16, 16], bidirectional=True, output_units=1)
    >>> model_body(keras.ops.ones((2, 7, 4))).shape
    TensorShape([2, 1])
    """

    def __init__(
        self,
        layer_type="lstm",
        units=(64,),
        bidirectional=False,
        merge_mode="concat",
        return_sequences=False,
        dropout=0.0,
        recurrent_dropout=0.0,
        head_units=(),
        output_units=None,
        output_activation=None,
        layer_options=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        layer_class = recurrent_layer_class(layer_type)
        if isinstance(units, int):
            units = [units]
        if not units:
            raise ValueError(f"`units` must list at least one layer size. Received: units={units!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"`merge_mode` must be one of {MERGE_MODES}. Received: merge_mode={merge_mode!r}")
        self.layer_type = layer_type
        self.units = [int(size) for size in units]
        self.bidirectional = bool(bidirectional)
        self.merge_mode = merge_mode
        self.return_sequences = bool(return_sequences)
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.head_units = [int(size) for size in head_units]
        self.output_units = output_units
        self.output_activation = output_activation
        self.layer_options = dict(layer_options or {})
        reserved = sorted({"units", "return_sequences", "dropout", "recurrent_dropout", "name"} & set(self.layer_options))
        if reserved:
            raise ValueError(f"`layer_options` cannot set what DeepRNN sets itself. Received: {reserved}")
        self.supports_masking = True

        self.recurrent_layers = []
        for depth, size in enumerate(self.units):
            layer = layer_class(
                size,
                return_sequences=self.return_sequences or depth < len(self.units) - 1,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                name=f"{layer_type}_{depth}",
                **self.layer_options,
            )
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, merge_mode=merge_mode, name=f"bidirectional_{depth}")
            self.recurrent_layers.append(layer)
        self.head_layers = [
            keras.layers.Dense(size, activation="relu", name=f"head_{index}")
            for index, size in enumerate(self.head_units)
        ]
        if output_units is not None:
            self.head_layers.append(keras.layers.Dense(output_units, activation=output_activation, name="output"))

    def build(self, input_shape):
        shape = input_shape
        for layer in self.recurrent_layers + self.head_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, mask=None, training=False):
        outputs = inputs
        for layer in self.recurrent_layers:
            outputs = layer(outputs, mask=mask, training=training)
        for layer in self.head_layers:
            outputs = layer(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self.recurrent_layers + self.head_layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def get_config(self):
        config = {
            "layer_type": self.layer_type,
            "units": self.units,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "return_sequences": self.return_sequences,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "head_units": self.head_units,
            "output_units": self.output_units,
            "output_activation": self.output_activation,
            "layer_options": self.layer_options,
        }
        return {**super().get_config(), **config}
