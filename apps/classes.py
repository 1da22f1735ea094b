"""The classifiers' head, which keeps the names of its classes with the model."""

import keras

from apps.config import validate_integer


@keras.saving.register_keras_serializable(package="rnn_suite")
class ClassProbabilities(keras.layers.Dense):
    """A classifier's head that keeps the names of its classes, so that a saved model knows what its outputs
    mean and an export (also one made later from the `.keras` file) cannot ship names that differ from it.

    `Dense(len(labels), activation="softmax")`; with two labels and `activation="sigmoid"`, `Dense(1)` giving
    the probability of the second label.

    Args:
        labels: the class names, one per class, in output order.
        thresholds: optional `{label: probability}`, the lowest probability at which the app reports that class
            (the keyword spotter's operating point, chosen on validation after training). Kept with the model
            and its exports like the names.
        smoothing: the number of consecutive windows whose probabilities the keyword spotter averages before
            applying the thresholds (chosen with them on validation; 1: none). Kept like the thresholds; a model
            saved before it existed loads with 1.
    """

    def __init__(self, labels, thresholds=None, smoothing=1, **kwargs):
        kwargs.setdefault("activation", "softmax")
        labels = [str(label) for label in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"`labels` must name at least 2 distinct classes. Received: labels={labels!r}")
        if kwargs["activation"] == "sigmoid" and len(labels) != 2:
            raise ValueError(f"A sigmoid head has exactly 2 labels. Received: labels={labels!r}")
        super().__init__(1 if kwargs["activation"] == "sigmoid" else len(labels), **kwargs)
        self.labels = tuple(labels)
        self.thresholds = None
        if thresholds is not None:
            self.set_thresholds(thresholds)
        self.smoothing = 1
        self.set_smoothing(smoothing)

    def set_thresholds(self, thresholds):
        """Sets `thresholds` (`{label: probability}`, labels of this head, probabilities from 0 to 1)."""
        if not isinstance(thresholds, dict):
            raise ValueError(f"`thresholds` must be a dict {{label: probability}}. Received: {thresholds!r}")
        unknown = sorted(set(thresholds) - set(self.labels))
        wrong = {label: value for label, value in thresholds.items()
                 if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1}  # fmt: skip
        if unknown or wrong:
            raise ValueError(f"`thresholds` must map labels of {list(self.labels)} to probabilities from 0 to 1. "
                             f"Received: unknown labels {unknown}, values out of range {wrong}")  # fmt: skip
        self.thresholds = {str(label): float(value) for label, value in thresholds.items()}

    def set_smoothing(self, smoothing):
        """Sets `smoothing`, the number of windows averaged: a positive integer."""
        self.smoothing = validate_integer("smoothing", smoothing)

    def get_config(self):
        config = {key: value for key, value in super().get_config().items() if key != "units"}
        return {**config, "labels": list(self.labels), "thresholds": self.thresholds, "smoothing": self.smoothing}


def model_labels(model):
    """The class names of the model's `ClassProbabilities` head, searched through nested models."""
    for layer in model.layers:
        if isinstance(layer, ClassProbabilities):
            return list(layer.labels)
        if isinstance(layer, keras.Model):
            try:
                return model_labels(layer)
            except ValueError:
                continue
    raise ValueError(f"The model {model.name!r} has no head that keeps class names; train it again. Received: "
                     f"layers {[layer.name for layer in model.layers]}")  # fmt: skip
