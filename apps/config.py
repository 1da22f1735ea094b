"""Typed defaults every app shares; each app subclasses `Config` and overrides what differs."""

import dataclasses

from data import sources

DISTRIBUTE_CHOICES = ("none", "mirrored", "multi_worker")


def validate_integer(name, value, lowest=1):
    """`value` if it is an integer (not a bool) of at least `lowest`, else a ValueError naming what was received."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        expected = "a positive integer" if lowest == 1 else f"an integer >= {lowest}"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return value


@dataclasses.dataclass
class Config:
    """Training and output settings; the CLI overrides any of them.

    Attributes:
        epochs: upper bound; early stopping on the monitored validation metric usually ends sooner.
        batch_size: examples per step.
        learning_rate: Adam's step size.
        patience: epochs without validation improvement before early stopping restores the best weights.
        monitor: the validation metric early stopping watches, and by which it chooses the epoch whose weights
            are kept: "val_loss" (lower is better) or "val_" and a metric the app compiles, e.g. "val_accuracy"
            (higher is better). Multi-worker training logs the loss only.
        seed: seeds Python, NumPy and TensorFlow, and turns on deterministic ops, so a run repeats exactly.
        dataset: "bundled" (offline, default) or the app's online dataset.
        data_path: the user's own file or folder to train and evaluate on instead of `dataset` (`--data`).
        split_seed: orders the rows (or groups) of a random split; fixed, so every run compares on one test set.
        split_fractions: train, validation and test shares of a random or grouped split (or of a time span).
        group_column: a column of the user's file whose values each go whole to one split (`--group-column`).
        split_column: a column of the user's file holding train, validation or test (`--split-column`).
        export_dir: the TF Serving model base folder; the app exports to `<export_dir>/<app>/<version>/`.
        reports_dir: metrics, baselines and plots go to `<reports_dir>/<app>/`.
        runs_dir: TensorBoard logs, CSV history, the resumable backup and the trained `.keras` model go
            to `<runs_dir>/<app>/`.
        distribute: "none", "mirrored" (all local devices) or "multi_worker" (`TF_CONFIG`).
        quick: the smoke profile: tiny data and model, a minute end to end.
        time_budget_minutes: stop training before an epoch that would end past this many minutes of
            fitting (judged by the longest epoch so far); 0 means no limit. The best weights are kept.
        average_epochs: the model ends with the mean of the weights after the best epoch and the
            `average_epochs - 1` epochs before it (checkpoint averaging); 1 keeps the best epoch's alone.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 2
    monitor: str = "val_loss"
    seed: int = 0
    dataset: str = "bundled"
    data_path: str = ""
    split_seed: int = 0
    split_fractions: tuple = (0.8, 0.1, 0.1)
    group_column: str = ""
    split_column: str = ""
    export_dir: str = "saved_models"
    reports_dir: str = "reports"
    runs_dir: str = "runs"
    distribute: str = "none"
    quick: bool = False
    time_budget_minutes: float = 0.0
    average_epochs: int = 1

    # Overrides applied by --quick, before the command line's own flags.
    QUICK = {}
    # Overrides applied by --demo: the smallest training that gets `make demo`'s inputs right.
    DEMO = {}

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience", "average_epochs"):
            validate_integer(name, getattr(self, name))
        if not isinstance(self.monitor, str) or not self.monitor.startswith("val_") or self.monitor == "val_":
            raise ValueError(f"`monitor` must name a validation metric: 'val_loss' or 'val_' and a metric of the "
                             f"app, e.g. 'val_accuracy'. Received: monitor={self.monitor!r}")  # fmt: skip
        if self.distribute == "multi_worker" and self.monitor != "val_loss":
            raise ValueError(f"Multi-worker training logs the validation loss only, so `monitor` must be 'val_loss' "
                             f"with distribute='multi_worker'. Received: monitor={self.monitor!r}")  # fmt: skip
        if self.distribute not in DISTRIBUTE_CHOICES:
            raise ValueError(
                f"`distribute` must be one of {DISTRIBUTE_CHOICES}. Received: distribute={self.distribute!r}"
            )
        if self.average_epochs > 1 and self.distribute == "multi_worker":
            raise ValueError("`average_epochs` above 1 works with distribute 'none' or 'mirrored' (the multi-worker "
                             f"loop keeps no epoch weights). Received: average_epochs={self.average_epochs}, "
                             f"distribute={self.distribute!r}")
        if isinstance(self.time_budget_minutes, bool) or not isinstance(self.time_budget_minutes, (int, float)) or (
            self.time_budget_minutes < 0
        ):
            raise ValueError(
                f"`time_budget_minutes` must be a number >= 0. Received: time_budget_minutes={self.time_budget_minutes!r}"
            )

        # Validates the split settings with the one check every app shares.
        options = sources.SplitOptions.from_config(self)
        if not self.data_path and options != sources.SplitOptions():
            raise ValueError(
                "--group-column, --split-column, --split-fractions and --split-seed split your own data (--data); "
                f"the bundled and online data keep their fixed splits. Received: {options} without --data"
            )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


def layer_sizes(units):
    """`units` as a tuple of positive layer sizes, one per stacked recurrent layer, or a ValueError."""
    if isinstance(units, (str, bytes)) or not hasattr(units, "__len__") or not units or any(
        isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in units
    ):
        raise ValueError(f"`units` must list positive layer sizes, one per stacked layer, e.g. (64,) or (64, 64). "
                         f"Received: units={units!r}")  # fmt: skip
    return tuple(units)
