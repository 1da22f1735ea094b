"""The one pipeline every app runs: data -> model -> train -> export -> evaluate against baselines -> report.

An app is a subclass of `App` that supplies only what is its own (data, model, serving signature, metric,
baseline, plots); `main(app)` gives it the same command line as every other app:

    python -m apps.<app> train     [--quick] [--epochs N] [--batch-size N] [--seed N] [--dataset NAME]
                                   [--export-dir DIR] [--distribute {none,mirrored,multi_worker}]
    python -m apps.<app> evaluate  [--version N]      the latest (or given) export, on the test split
    python -m apps.<app> predict   VALUE ... | --file FILE
    python -m apps.<app> export                       the last trained model, as a new version
    python -m apps.<app> <extra verb> ...             an app's own verbs, from `App.extra_verbs()`
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import time
import uuid

import keras
import numpy as np
import tensorflow as tf

from apps import training
from apps.config import DISTRIBUTE_CHOICES
from apps.distributed import fit_across_workers
from serving import batching, formats, warmup
from serving.models import read_signature_defs

SERVING_SIGNATURE = "serving_default"


class App:
    """What an app supplies. Subclasses set `name` and `Config` and implement the methods below."""

    name = None
    Config = None

    def add_arguments(self, parser):
        """App-specific flags; each `dest` must be a field of `Config`, with default None."""

    def load_data(self, config):
        """Raw splits, e.g. `{"train": ..., "validation": ..., "test": ...}`."""
        raise NotImplementedError

    def make_dataset(self, config, data, split, training):
        """A batched `tf.data.Dataset` of `(raw inputs, targets)` for fitting."""
        raise NotImplementedError

    def build_preprocessor(self, config, data):
        """An adapted Keras layer of graph ops (text vectorization, say), or None. It runs in the tf.data
        pipeline during training, which distribution strategies need, and inside the exported model."""
        return None

    def raw_input(self, config):
        """The `keras.Input` of raw values that the preprocessor reads; needed with a preprocessor."""
        return None

    def build_model(self, config, data):
        """A compiled `keras.Model` built from our layers, on preprocessed inputs; called inside the
        distribution scope."""
        raise NotImplementedError

    def serving_resources(self, model, config):
        """`{name: trackable}` the endpoints use besides the model's variables (a lookup table read from an
        asset file, say); the export tracks them so that they are saved, and passes them to `serving_endpoints`."""
        return {}

    def serving_endpoints(self, model, config, resources):
        """`{signature name: (function, [tf.TensorSpec named as the function's arguments])}`; the function
        takes raw inputs and returns a dict of named outputs. Must include "serving_default". `resources`
        is what `serving_resources` returned."""
        raise NotImplementedError

    def example_inputs(self, config, data):
        """Raw serving inputs `{name: np.ndarray}` at two batch sizes, to check every export with."""
        raise NotImplementedError

    def evaluate(self, config, data, predict):
        """Metrics on the test split; `predict(inputs) -> outputs` calls the exported signature."""
        raise NotImplementedError

    def baselines(self, config, data):
        """`{baseline name: metrics}` on the same test split, with the same metric names."""
        raise NotImplementedError

    def plot(self, config, data, predict, report_dir):
        """The app's own PNG plots; returns their paths."""
        return []

    def calibrate(self, config, data, model):
        """After training, before the model is saved and exported: choose operating settings (a threshold, say)
        on validation data and keep them in the model. Nothing by default."""

    def report_files(self, config, data, predict, report_dir):
        """The app's own report files besides plots (sample predictions, say); returns their paths."""
        return []

    def parse_inputs(self, values):
        """Raw serving inputs from command-line strings (or a file's lines), as the serving client parses them."""
        return formats.PARSERS[self.name](values)

    def format_outputs(self, inputs, outputs):
        """Predictions as friendly text, as the serving client prints them."""
        return formats.FORMATTERS[self.name](inputs, outputs)

    def extra_verbs(self):
        """The app's own command-line verbs, `{name: (help, add_arguments(parser), run(config, arguments))}`.
        Each gets the common flags too; `run`'s return value is `main`'s."""
        return {}


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------


def make_strategy(distribute):
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if distribute == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--distribute multi_worker needs the TF_CONFIG environment variable describing the cluster. "
                "Received: no TF_CONFIG"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Only the chief writes exports and reports; other workers keep their files apart."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def worker_run_dir(app, config, strategy):
    run_dir = pathlib.Path(config.runs_dir) / app.name
    if not is_chief(strategy):
        task = strategy.cluster_resolver.task_id
        run_dir = run_dir / f"worker-{task}"
    return run_dir


def seed_everything(seed):
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def to_tensor(value):
    """A tensor from a NumPy array; text arrays (dtype object or str) go through a list of Python strings."""
    value = np.asarray(value)
    if value.dtype.kind in "OUS":
        return tf.constant(value.tolist(), dtype=tf.string)
    return tf.constant(value)


def shard_by_data(dataset):
    # Datasets built from in-memory tensors cannot be sharded by file across workers.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit(model, train_dataset, validation_dataset, config, run_dir, history_path):
    """Fits with early stopping on the monitored validation metric (`config.monitor`) and the time budget, ending with the best epoch's
    weights. A killed run, rerun, resumes from its last finished epoch and ends as an uninterrupted run.
    Returns the final `training.TrainingState` (epochs, best epoch, fitting seconds)."""
    backup = training.Backup(run_dir / "backup", model, config)
    state = backup.restore()
    weights_dir = run_dir / "epoch_weights"
    if state.epoch == 0:  # a fresh run: another run's epochs must not be averaged in
        shutil.rmtree(weights_dir, ignore_errors=True)
    if not state.finished(config.epochs):
        batches, steps = training.batches_from_epoch(train_dataset, state.epoch)
        callbacks = [
            # The epoch's history row and scalars come before its backup: a kill between them leaves an
            # epoch that the rerun trains again (align_history drops its row), never one without its row.
            keras.callbacks.CSVLogger(str(history_path), append=True),
            keras.callbacks.TensorBoard(str(run_dir / "logs")),
            training.ResumableEarlyStopping(backup, state, config.patience, config.time_budget_minutes, config.monitor),
        ]
        if config.average_epochs > 1:
            callbacks.insert(-1, training.EpochWeights(weights_dir, state, config.average_epochs))
        model.fit(
            batches,
            validation_data=validation_dataset,
            epochs=config.epochs,
            initial_epoch=state.epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,  # the app's tf.data pipeline shuffles, seeded
            verbose=1 if sys.stdout.isatty() else 2,
        )
    backup.finish(state)
    if config.average_epochs > 1 and state.best_epoch >= 0:
        state.averaged_epochs = training.average_epoch_weights(model, weights_dir, state.best_epoch + 1,
                                                               config.average_epochs)  # fmt: skip
        print(f"The model averages the weights after epochs {state.averaged_epochs}.")
    return state


def train(app, config):
    """Trains with the config, exports, evaluates the export on the test split and writes the report."""
    start = time.perf_counter()
    seed_everything(config.seed)
    strategy = make_strategy(config.distribute)
    data = app.load_data(config)
    run_dir = worker_run_dir(app, config, strategy)
    history_path = run_dir / "history.csv"
    training.check_backup(run_dir / "backup", config)
    training.align_history(run_dir / "backup", history_path)
    run_dir.mkdir(parents=True, exist_ok=True)

    preprocessor = app.build_preprocessor(config, data)
    with strategy.scope():
        model = app.build_model(config, data)
        model.optimizer.build(model.trainable_variables)  # so that a backup can restore its variables

    def dataset(split, training):
        batches = app.make_dataset(config, data, split, training=training)
        if preprocessor is not None:
            batches = batches.map(
                lambda inputs, targets: (preprocessor(inputs), targets), num_parallel_calls=tf.data.AUTOTUNE
            )
        return shard_by_data(batches)

    train_dataset, validation_dataset = dataset("train", True), dataset("validation", False)
    if config.distribute == "multi_worker":
        state = fit_across_workers(model, strategy, train_dataset, validation_dataset, config, run_dir, history_path)
    else:
        state = fit(model, train_dataset, validation_dataset, config, run_dir, history_path)
    if preprocessor is not None:
        model = keras.Sequential([app.raw_input(config), preprocessor, model], name=app.name)
    if is_chief(strategy):
        app.calibrate(config, data, model)
    model.save(run_dir / "model.keras")  # raw inputs in, as exported
    if not is_chief(strategy):
        return None
    version_dir = export(app, model, config, data)
    return write_report(app, config, data, version_dir, history_path, time.perf_counter() - start, state)


# ---------------------------------------------------------------------------------------------------------
# Export: versioned, atomic, checked
# ---------------------------------------------------------------------------------------------------------


def build_archive(app, model, config):
    archive = keras.export.ExportArchive()
    archive.track(model)
    resources = app.serving_resources(model, config)
    for resource in resources.values():
        archive.track(resource)
    endpoints = app.serving_endpoints(model, config, resources)
    if SERVING_SIGNATURE not in endpoints:
        raise ValueError(f"{app.name} must export a {SERVING_SIGNATURE!r} signature. Received: {sorted(endpoints)}")
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    return archive, endpoints


def version_numbers(base_dir):
    return sorted(int(path.name) for path in base_dir.iterdir() if path.is_dir() and path.name.isdigit())


def export(app, model, config, data):
    """Writes `<export_dir>/<app>/<N>/` with N the next version, as TF Serving expects.

    The SavedModel is written to a hidden temporary folder beside the versions (TF Serving ignores names
    that are not integers), reloaded and compared with the in-memory model, and only then renamed into
    place, so a server watching the folder never sees a half-written or wrong version. TF Serving's own
    files go in with it: `batching_params.pbtxt` where every signature batches safely, and the warmup
    requests (the example inputs) that it runs before serving the version.
    """
    base_dir = pathlib.Path(config.export_dir) / app.name
    base_dir.mkdir(parents=True, exist_ok=True)
    archive, endpoints = build_archive(app, model, config)
    temporary = base_dir / f".tmp-{uuid.uuid4().hex}"
    try:
        archive.write_out(str(temporary), verbose=False)
        examples = app.example_inputs(config, data)
        check_export(str(temporary), endpoints[SERVING_SIGNATURE][0], examples)
        signature_defs = read_signature_defs(temporary)
        unbatchable = batching.write_parameters_if_batchable(temporary, signature_defs)
        warmup.write_warmup_requests(temporary, app.name, examples, signature_defs, SERVING_SIGNATURE)
        while True:
            version = (version_numbers(base_dir) or [0])[-1] + 1
            try:
                os.rename(temporary, base_dir / str(version))
                break
            except OSError:  # another exporter took this number first
                if not (base_dir / str(version)).exists():
                    raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    print(f"Exported {base_dir / str(version)}" + (f"; not batched by TF Serving: {unbatchable[0]}" if unbatchable else
                                                     f"; with {batching.PER_MODEL_FILENAME}"))
    return base_dir / str(version)


def check_export(path, function, example_batches):
    """The reloaded signature must give the in-memory function's outputs at every example batch size."""
    signature = tf.saved_model.load(path).signatures[SERVING_SIGNATURE]
    for inputs in example_batches:
        tensors = {name: to_tensor(value) for name, value in inputs.items()}
        expected = function(**tensors)
        reloaded = signature(**tensors)
        if sorted(expected) != sorted(reloaded):
            raise ValueError(f"The export's outputs {sorted(reloaded)} differ from the model's {sorted(expected)}")
        for name, value in expected.items():
            value, other = np.asarray(value), reloaded[name].numpy()
            if value.dtype.kind in "fc":
                np.testing.assert_allclose(other, value, rtol=1e-4, atol=1e-5, err_msg=f"output {name!r}")
            else:
                np.testing.assert_array_equal(other, value, err_msg=f"output {name!r}")


def latest_version(app, config, version=None):
    base_dir = pathlib.Path(config.export_dir) / app.name
    versions = version_numbers(base_dir) if base_dir.is_dir() else []
    if version is None:
        if not versions:
            raise ValueError(
                f"No export of {app.name} under {base_dir}. Run `python -m apps.{app.name} train` first. "
                f"Received: no version folders"
            )
        return base_dir / str(versions[-1])
    if version not in versions:
        raise ValueError(f"Version {version} of {app.name} does not exist. Received: version={version}; "
                         f"available: {versions}")
    return base_dir / str(version)


def load_predictor(path, batch_size=256):
    """`predict(inputs) -> {name: np.ndarray}` through the export's serving signature, in batches."""
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SERVING_SIGNATURE]

    def predict(inputs):
        size = len(next(iter(inputs.values())))
        chunks = []
        for begin in range(0, size, batch_size):
            batch = {name: to_tensor(value[begin : begin + batch_size]) for name, value in inputs.items()}
            chunks.append({name: value.numpy() for name, value in signature(**batch).items()})
        return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}

    predict.path = pathlib.Path(path)
    predict.loaded, predict.signatures = loaded, loaded.signatures  # for apps that also use other signatures
    return predict


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------


def evaluate_export(app, config, data, version_dir):
    predict = load_predictor(version_dir)
    return app.evaluate(config, data, predict), predict


def fitting_summary(state):
    """What the report says of the fitting: epochs run, the best one (whose weights the model keeps, counted
    from 1), the fitting time over all attempts, and why it stopped."""
    return {
        "epochs": state.epoch,
        "best_epoch": state.best_epoch + 1,
        "fit_seconds": state.seconds,
        "seconds_per_epoch": state.seconds / state.epoch if state.epoch else None,
        "stopped": state.stopped or "after the configured epochs",
        "averaged_epochs": state.averaged_epochs,
    }


def write_report(app, config, data, version_dir, history_path, seconds=None, state=None):
    metrics, predict = evaluate_export(app, config, data, version_dir)
    baselines = app.baselines(config, data)
    report_dir = pathlib.Path(config.reports_dir) / app.name
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    if history_path is not None and history_path.exists():
        plots.append(plot_learning_curves(history_path, report_dir / "learning_curves.png"))
    plots += app.plot(config, data, predict, report_dir)
    files = app.report_files(config, data, predict, report_dir)
    report = {
        "app": app.name,
        "dataset": data.get("source", config.dataset),
        "data": {
            "source": data.get("source", config.dataset),
            "examples": {split: split_size(data[split]) for split in ("train", "validation", "test")},
            "dropped": data.get("dropped", {}),
        },
        "export": str(version_dir),
        "train_seconds": seconds,
        "fitting": fitting_summary(state) if state is not None else None,
        "config": config.to_dict(),
        "model": metrics,
        "baselines": baselines,
        "plots": [str(path) for path in plots],
        "files": [str(path) for path in files],
    }
    (report_dir / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    (report_dir / "metrics.md").write_text(markdown_report(report))
    print(markdown_report(report))
    print(f"Report: {report_dir}/metrics.md, metrics.json and {len(plots)} plot(s). Export: {version_dir}")
    return report


def markdown_report(report):
    """One row per metric, one column per model, so that apps with many metrics stay readable."""
    columns = {"model (ours)": report["model"], **report["baselines"]}
    names = [name for name, value in report["model"].items() if isinstance(value, (int, float))]
    lines = [
        f"# {report['app']}: test split of the {report['dataset']} data",
        "",
        "| metric | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(format_number(values.get(name)) for values in columns.values()) + " |")
    lines.append("")
    if "data" in report:
        sizes = ", ".join(f"{count} {split}" for split, count in report["data"]["examples"].items())
        dropped = ", ".join(f"{count} {reason}" for reason, count in report["data"]["dropped"].items()) or "none"
        lines.append(f"Data: {report['data']['source']} ({sizes}); rows dropped: {dropped}.")
        lines.append("")
    if report.get("train_seconds"):
        fitting = report.get("fitting")
        averaged = fitting.get("averaged_epochs") if fitting else None
        averaged = f", weights averaged over epochs {averaged[0]}-{averaged[-1]}" if averaged else ""
        epochs = (f" ({fitting['epochs']} epoch{'s' * (fitting['epochs'] != 1)}, {fitting['seconds_per_epoch']:.0f} s each on average, best epoch "
                  f"{fitting['best_epoch']}{averaged}; stopped: {fitting['stopped']})" if fitting and fitting["epochs"] else "")  # fmt: skip
        lines.append(f"Trained in {report['train_seconds']:.0f} s on {os.cpu_count()} CPU cores{epochs}; "
                     f"export {report['export']}.")
    lines += [f"![{pathlib.Path(path).stem}]({pathlib.Path(path).name})" for path in report["plots"]]
    lines += [f"- [{pathlib.Path(path).name}]({pathlib.Path(path).name})" for path in report.get("files", [])]
    return "\n".join(lines) + "\n"


def split_size(split):
    """Examples in one split: apps keep a split as a tuple of aligned arrays, or as one array or frame."""
    return len(split[0]) if isinstance(split, tuple) else len(split)


def format_number(value):
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def pyplot():
    """matplotlib's pyplot on the Agg backend: reports are files, and machines may have no display."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as module

    return module


def save_figure(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def plot_learning_curves(history_path, path):
    import pandas as pd

    history = pd.read_csv(history_path)
    metrics = [name for name in history.columns if name != "epoch" and not name.startswith("val_")]
    figure, axes = pyplot().subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for axis, name in zip(axes[0], metrics):
        axis.plot(history["epoch"] + 1, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(history["epoch"] + 1, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.legend()
    return save_figure(figure, path)


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------


def build_parser(app):
    parser = argparse.ArgumentParser(prog=f"python -m apps.{app.name}", description=app.__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    extra_verbs = app.extra_verbs()
    for verb, help_text in (
        ("train", "train with the default config, export, evaluate on the test split, write the report"),
        ("evaluate", "evaluate an export on the test split and write the report"),
        ("predict", "predict raw inputs given on the command line or in a file"),
        ("export", "export the last trained model as a new version"),
        *((name, help_text) for name, (help_text, _, _) in extra_verbs.items()),
    ):
        sub = verbs.add_parser(verb, help=help_text)
        profile = sub.add_mutually_exclusive_group()
        profile.add_argument("--quick", action="store_true", default=None, help="smoke profile, about a minute")
        profile.add_argument("--demo", action="store_true", default=None,
                             help="demo profile: the smallest training that gets make demo's inputs right")
        sub.add_argument("--epochs", type=int)
        sub.add_argument("--patience", type=int, help="epochs without a better --monitor value before stopping early")
        sub.add_argument("--monitor", help="the validation metric that early stopping watches and that chooses the "
                         "epoch kept: val_loss (default, lower is better) or another, e.g. val_accuracy (higher)")
        sub.add_argument("--batch-size", type=int, dest="batch_size")
        sub.add_argument("--seed", type=int)
        sub.add_argument("--dataset", help="bundled (default, offline) or the app's online dataset")
        if verb in ("train", "evaluate", "export"):
            sub.add_argument("--data", dest="data_path", help="your own file or folder instead of --dataset (see README)")
            sub.add_argument("--group-column", dest="group_column",
                             help="--data: whole groups (a speaker, a product) stay in one split")
            sub.add_argument("--split-column", dest="split_column",
                             help="--data: your own split, a column of train/validation/test")
            sub.add_argument("--split-fractions", dest="split_fractions", type=fractions_argument,
                             help="train,validation,test shares of a random or grouped split (default 0.8,0.1,0.1)")
            sub.add_argument("--split-seed", dest="split_seed", type=int, help="seed of the random or grouped split")
        sub.add_argument("--export-dir", dest="export_dir")
        sub.add_argument("--reports-dir", dest="reports_dir")
        sub.add_argument("--runs-dir", dest="runs_dir")
        sub.add_argument("--distribute", choices=DISTRIBUTE_CHOICES)
        sub.add_argument("--average-epochs", dest="average_epochs", type=int,
                         help="end with the mean of the weights after the best epoch and the ones before it, "
                         "this many in all (1: the best epoch's alone)")
        sub.add_argument("--time-budget-minutes", dest="time_budget_minutes", type=float,
                         help="stop training before an epoch that would end past this many minutes (0: no limit)")
        if verb in ("evaluate", "predict") or verb in extra_verbs:
            sub.add_argument("--version", type=int, help="export version (default: the latest)")
        if verb == "predict":
            sub.add_argument("values", nargs="*", help="raw inputs")
            sub.add_argument("--file", help="a file with one raw input per line")
        if verb in extra_verbs:
            extra_verbs[verb][1](sub)
        app.add_arguments(sub)
    return parser


def fractions_argument(text):
    try:
        return tuple(float(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated shares like 0.8,0.1,0.1. Received: {text!r}")


def config_from_arguments(app, arguments):
    config = app.Config()
    if arguments.quick:
        config = config.replace(**app.Config.QUICK, quick=True)
    if arguments.demo:
        config = config.replace(**app.Config.DEMO)
    fields = {field.name for field in dataclasses.fields(config)}
    changes = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in vars(arguments).items()
        if name in fields and value is not None
    }
    return config.replace(**changes)


def command_line(app):
    """`python -m apps.<app>`: `main`, with bad data or settings said in one line and a non-zero exit, not a
    traceback."""
    try:
        return main(app)
    except ValueError as error:  # bad data or settings (DataError is one): what was received and expected
        sys.exit(f"error: {error}")


def main(app, argv=None):
    arguments = build_parser(app).parse_args(argv)
    config = config_from_arguments(app, arguments)
    extra_verbs = app.extra_verbs()
    if arguments.verb in extra_verbs:
        return extra_verbs[arguments.verb][2](config, arguments)
    if arguments.verb == "train":
        return train(app, config)
    if arguments.verb == "evaluate":
        seed_everything(config.seed)
        version_dir = latest_version(app, config, arguments.version)
        return write_report(app, config, app.load_data(config), version_dir, history_path=None)
    if arguments.verb == "export":
        model_path = pathlib.Path(config.runs_dir) / app.name / "model.keras"
        if not model_path.exists():
            raise ValueError(f"No trained {app.name} model at {model_path}. Run train first. Received: no file")
        return export(app, keras.models.load_model(model_path), config, app.load_data(config))
    values = list(arguments.values)
    if arguments.file:
        values += [line.rstrip("\n") for line in pathlib.Path(arguments.file).read_text().splitlines()]
    if not values:
        raise ValueError("predict needs inputs on the command line or --file. Received: none")
    inputs = app.parse_inputs(values)
    outputs = load_predictor(latest_version(app, config, arguments.version))(inputs)
    print(app.format_outputs(inputs, outputs))
    return outputs
