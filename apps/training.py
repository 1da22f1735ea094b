"""The training state that both training loops keep, so that a killed run, rerun, ends as an uninterrupted one.

A run that is killed and started again resumes from its last finished epoch with everything that decides
the rest of training: the model's, optimizer's and random seeds' variables (`Backup`), early stopping's
best monitored value, best epoch and wait, and the time budget's clock (`TrainingState`), the next shuffles and
augmentations of the training data (`batches_from_epoch`), and a CSV history without the epochs it trains again
(`align_history`). The single-machine `fit` and the multi-worker loop (apps/distributed.py) both use these.
"""

import dataclasses
import json
import math
import os
import pathlib
import shutil
import time

import keras
import tensorflow as tf

from apps.config import validate_integer

STATE_FILE = "state.json"
# Settings a rerun may change and still resume: where it writes, and how long it may go on.
RESUMABLE_CHANGES = ("epochs", "patience", "time_budget_minutes", "export_dir", "reports_dir", "runs_dir")


@dataclasses.dataclass
class TrainingState:
    """Where a run stands after its last finished epoch: what a resumed run starts from.

    Attributes:
        epoch: epochs finished, so the epoch a resumed run trains next; the history keeps the rows before it.
        best_value: the best value so far of the monitored validation metric (`Config.monitor`): the lowest
            loss, or the highest accuracy.
        best_epoch: the epoch that reached it, whose variables training ends with; -1 before any.
        waited: epochs since the best one, for early stopping.
        seconds: fitting time so far, over every attempt of the run, for the time budget.
        longest_epoch_seconds: the longest epoch so far, by which the time budget judges the next one.
        stopped: why training stopped before its last epoch; "" while it goes on.
        averaged_epochs: the epochs (counted from 1) whose weights the model ends with averaged, once
            training has ended with `Config.average_epochs` above 1.
        settings: the run's config but for `RESUMABLE_CHANGES` (`run_settings`), which a resume must match.
    """

    epoch: int = 0
    best_value: float = math.inf
    best_epoch: int = -1
    waited: int = 0
    seconds: float = 0.0
    longest_epoch_seconds: float = 0.0
    stopped: str = ""
    averaged_epochs: list = dataclasses.field(default_factory=list)
    settings: dict = dataclasses.field(default_factory=dict)

    def end_epoch(self, value, seconds, patience, time_budget_minutes, higher_is_better=False):
        """Records a finished epoch that took `seconds` and ended with the monitored validation `value`, and
        sets `stopped` if no other epoch should run: after `patience` epochs without a better value (higher
        with `higher_is_better`, else lower), or before an epoch that would end past `time_budget_minutes` of
        fitting (0: no limit), judged by the longest epoch so far."""
        better = value > self.best_value if higher_is_better else value < self.best_value
        if better or (self.best_epoch < 0 and not math.isnan(value)):  # the first number is the best so far
            self.best_value, self.best_epoch, self.waited = float(value), self.epoch, 0
        else:
            self.waited += 1
        self.epoch += 1
        self.seconds += seconds
        self.longest_epoch_seconds = max(self.longest_epoch_seconds, seconds)
        if self.waited and self.waited >= patience:
            self.stopped = f"no validation improvement for {self.waited} epochs"
        elif time_budget_minutes and self.seconds + self.longest_epoch_seconds > 60.0 * time_budget_minutes:
            self.stopped = f"another epoch would end past the time budget of {time_budget_minutes:g} minutes"

    def finished(self, epochs):
        return bool(self.stopped) or self.epoch >= epochs


def read_state(backup_dir):
    """The `TrainingState` a run in `backup_dir` resumes from, or None for a fresh run."""
    path = pathlib.Path(backup_dir) / STATE_FILE
    if not path.exists():
        return None
    return TrainingState(**json.loads(path.read_text()))


def run_settings(config):
    """What a run trains on and with: its config (data included) but for `RESUMABLE_CHANGES`, as JSON has it."""
    settings = {name: value for name, value in config.to_dict().items() if name not in RESUMABLE_CHANGES}
    return json.loads(json.dumps(settings, default=str))


def check_backup(backup_dir, config):
    """Refuses to resume a backup that `config` did not make: its weights and early stopping belong to other
    data or settings. Nothing is deleted; the message says how to resume it or start afresh."""
    state = read_state(backup_dir)
    settings = run_settings(config)
    if state is None or state.settings == settings:
        return
    changed = {name: (state.settings.get(name), settings.get(name)) for name in sorted(set(state.settings) | set(settings))
               if state.settings.get(name) != settings.get(name)}  # fmt: skip
    raise ValueError(
        f"{backup_dir} holds an unfinished run with other settings, which this run would resume. Received "
        f"(backup's, yours): {changed}. Rerun with the backup's settings to resume it, or delete {backup_dir} "
        "(or pass another --runs-dir) to start afresh"
    )


def random_states(model):
    """The model's variables that are not weights: the states of its dropout's seed generators, which
    neither `save_weights` nor a checkpoint of the model keeps, and which decide the next dropout masks."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


class Backup:
    """The checkpoints of the last finished epoch and of the best one, named by the `TrainingState` beside them.

    Each epoch writes a new checkpoint, then replaces state.json (a temporary file renamed over it), then
    deletes the checkpoints that state.json no longer names. A kill at any point thus leaves a state.json
    whose checkpoints are complete, or no state.json (a fresh run). The model's optimizer must be built.
    """

    def __init__(self, directory, model, config):
        self.directory = pathlib.Path(directory)
        self.settings = run_settings(config)
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, random_states=random_states(model)
        )

    def checkpoint_path(self, epochs_done):
        return str(self.directory / f"after-{epochs_done}-epochs")

    def restore(self):
        """The saved `TrainingState`, with the variables of its last finished epoch restored; a fresh one
        when there is no backup."""
        state = read_state(self.directory)
        if state is None:
            return TrainingState(settings=self.settings)
        self.checkpoint.read(self.checkpoint_path(state.epoch)).assert_consumed()
        print(f"Resuming after epoch {state.epoch} from {self.directory}")
        return state

    def save(self, state):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.checkpoint.write(self.checkpoint_path(state.epoch))
        temporary = self.directory / f"{STATE_FILE}.tmp"
        temporary.write_text(json.dumps(dataclasses.asdict(state)))
        os.replace(temporary, self.directory / STATE_FILE)
        kept = {pathlib.Path(self.checkpoint_path(epochs)).name for epochs in (state.epoch, state.best_epoch + 1)}
        for path in self.directory.glob("after-*-epochs.*"):
            if path.name.split(".")[0] not in kept:
                path.unlink()

    def finish(self, state):
        """Ends training with the best epoch's variables (its weights, as early stopping with
        `restore_best_weights` ends, and its optimizer's state) and deletes the backup."""
        if state.best_epoch >= 0:
            self.checkpoint.read(self.checkpoint_path(state.best_epoch + 1)).assert_consumed()
        shutil.rmtree(self.directory, ignore_errors=True)


def batches_from_epoch(dataset, epoch):
    """`(batches, steps)`: `dataset` repeated endlessly from the start of `epoch`, and its batches per epoch.

    Training reads one iterator, `steps` batches an epoch. tf.data restarts its random sequences in a new
    process: each pass of a seeded shuffle with `reshuffle_each_iteration` takes the next order of its
    sequence, from epoch 0's, and a `tf.random.Generator` in a `map` starts from its seed. So a resumed run
    computes and drops the batches of the epochs it resumes after, which advances those sequences exactly
    as the killed run did. (Keras' `fit` on the dataset itself opens two iterators an epoch when the
    dataset's length is known, so the order of epoch k would depend on more than k.)
    """
    steps = int(dataset.cardinality())
    if steps == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"The training dataset must end, to be read in epochs. Received: {dataset}")
    if steps == tf.data.UNKNOWN_CARDINALITY:  # batched by length, say: counted by one pass, in every run
        steps = int(dataset.reduce(0, lambda count, _: count + 1))
    return dataset.repeat().skip(epoch * steps), steps


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Early stopping on a validation metric (`monitor`, a key of Keras' epoch logs) and the time budget, kept
    in `state` and saved with the variables in `backup` after every epoch, so that a resumed run stops where an
    uninterrupted one would. Put it after the callbacks that log the epoch: an epoch the backup holds then has
    its log."""

    def __init__(self, backup, state, patience, time_budget_minutes, monitor="val_loss"):
        super().__init__()
        self.backup = backup
        self.state = state
        self.patience = patience
        self.time_budget_minutes = time_budget_minutes
        self.monitor = monitor

    def on_train_begin(self, logs=None):
        self.last_epoch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor not in logs:
            validation = sorted(name for name in logs if name.startswith("val_"))
            raise ValueError(f"`monitor` must be a validation metric the model logs, one of {validation}. "
                             f"Received: monitor={self.monitor!r}")  # fmt: skip
        now = time.perf_counter()
        self.state.end_epoch(logs[self.monitor], now - self.last_epoch_end, self.patience, self.time_budget_minutes,
                             higher_is_better=higher_is_better(self.monitor))  # fmt: skip
        self.last_epoch_end = now
        self.backup.save(self.state)
        if self.state.stopped:
            print(f"Stopping after epoch {epoch + 1}: {self.state.stopped}.")
            self.model.stop_training = True


class EpochWeights(keras.callbacks.Callback):
    """Writes the weights after every epoch to `directory` (`epoch-<n>.weights.h5`, n counted from 1), for
    `average_epoch_weights`, keeping only those that the `count` epochs ending at a best epoch may still need.
    Put it before `ResumableEarlyStopping`: an epoch the backup holds then has its weights file, and a
    resumed run finds the files of the epochs it does not train again."""

    def __init__(self, directory, state, count):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.state = state
        self.count = count

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(epoch_weights_path(self.directory, epoch + 1))
        # The best epoch only moves later, so an epoch `count` or more before it is never averaged.
        for path in self.directory.glob("epoch-*.weights.h5"):
            if int(path.name.split(".")[0].split("-")[1]) <= self.state.best_epoch + 1 - self.count:
                path.unlink()


def epoch_weights_path(directory, epoch):
    return str(pathlib.Path(directory) / f"epoch-{epoch}.weights.h5")


def average_epoch_weights(model, directory, last_epoch, count):
    """Sets `model`'s weights to the mean of those `EpochWeights` wrote after epochs `last_epoch - count + 1`
    to `last_epoch` (counted from 1; fewer where training had fewer), and returns the epochs averaged.

    Averaging the last checkpoints of one run (Vaswani et al., 2017 averaged the last 5 or 20) smooths the
    noise of the final steps of Adam without another training."""
    validate_integer("count", count)
    epochs = list(range(max(1, last_epoch - count + 1), last_epoch + 1))
    missing = [epoch for epoch in epochs if not pathlib.Path(epoch_weights_path(directory, epoch)).exists()]
    if not epochs or missing:
        raise ValueError(f"Expected the weights of epochs {epochs} in {directory}. Received: epochs {missing} missing")
    total = None
    for epoch in epochs:
        model.load_weights(epoch_weights_path(directory, epoch))
        values = [weight.numpy().astype("float64") for weight in model.weights]
        total = values if total is None else [sum_ + value for sum_, value in zip(total, values)]
    for weight, sum_ in zip(model.weights, total):
        if keras.backend.is_float_dtype(weight.dtype):  # a counter, say, keeps its last value
            weight.assign((sum_ / len(epochs)).astype(weight.dtype))
    return epochs


def higher_is_better(monitor):
    """Whether a larger value of the logged metric `monitor` is better: not for a loss, yes for the rest
    (accuracy and the like)."""
    return not monitor.endswith("loss")


def cosine_decay(learning_rate, epochs, examples, batch_size):
    """A learning rate from `learning_rate` down to 0 at the end of the last of `epochs`, each of
    ceil(`examples` / `batch_size`) steps, along half a cosine."""
    steps = epochs * math.ceil(examples / batch_size)
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)


def align_history(backup_dir, history_path):
    """Makes the CSV history agree with the backup a run resumes from.

    A fresh run starts the history anew. A resumed run keeps only the epochs its backup holds: a kill
    can land after an epoch's history row and before its backup.
    """
    if not history_path.exists():
        return
    state = read_state(backup_dir)
    if state is None:
        history_path.unlink()
        return
    keep_history_before(history_path, state.epoch)


def keep_history_before(history_path, epoch):
    """Drops the history rows of `epoch` and later, which a resumed run trains again."""
    import pandas as pd

    try:
        history = pd.read_csv(history_path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return
    history[history["epoch"] < epoch].to_csv(history_path, index=False)
