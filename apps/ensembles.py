"""Ensembles inside one Keras model: several members trained side by side, served as their mean.

An app builds `ensemble_size` members on the same inputs and stacks their outputs on a members axis
(`StackMembers`, axis 1). Each member is trained on its own loss, as if alone, so the members stay as
diverse as independent runs: the loss sees `[batch, members, ...]` outputs against the target repeated once
per member (or broadcast over the axis) and averages over it, which gives each member the gradient of its
own loss. The export serves `mean_of_members`, the model that is evaluated.

Used by sentiment (`--ensemble-size`, three BiLSTMs by default) and stock forecasting (one LSTM by default).
"""

import keras

from apps.config import validate_integer

HELP = "members trained side by side, each on its own loss; the export serves their mean"


def add_argument(parser):
    """`--ensemble-size N`, the same flag in every app that has ensembles."""
    parser.add_argument("--ensemble-size", dest="ensemble_size", type=int, help=HELP)


def validate_size(size):
    """`size` if it is a positive integer, else a ValueError naming what was received."""
    return validate_integer("ensemble_size", size)


def member_name(name, index, size):
    """A member's layer name: `name` alone, as before ensembles, when there is one member, else `name_index`."""
    return f"{name}_{index}" if size > 1 else name


@keras.saving.register_keras_serializable(package="rnn_suite")
class StackMembers(keras.layers.Layer):
    """A list of N member outputs of one shape `[batch, ...]` -> `[batch, N, ...]`."""

    def call(self, inputs):
        return keras.ops.stack(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], len(input_shape), *input_shape[0][1:])


def mean_of_members(outputs):
    """`[batch, members, ...]` -> `[batch, ...]`: what the export serves."""
    return keras.ops.mean(outputs, axis=1)
