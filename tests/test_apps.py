"""The apps end to end: quick training, the export's layout and contract in a fresh process, bad inputs,
resuming a killed run, and multi-worker training."""

import dataclasses
import json
import os
import signal
import socket
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from apps import pipeline, sentiment, stock_forecast, training
from serving.contracts import CONTRACTS
from tests.helpers import folders, run_app, run_python, run_without_our_code

APPS = {"sentiment": sentiment.SentimentApp(), "stock_forecast": stock_forecast.StockForecastApp()}


@pytest.fixture(params=sorted(APPS))
def trained(request, trained_app):
    return trained_app(request.param)


@pytest.fixture
def trained_sentiment(trained_app):
    return trained_app("sentiment")


@pytest.fixture
def trained_stock(trained_app):
    return trained_app("stock_forecast")


def test_train_quick_writes_export_report_and_plots(trained):
    name, tmp_path, report = trained
    version_dir = tmp_path / "saved_models" / name / "1"
    assert (version_dir / "saved_model.pb").exists() and (version_dir / "variables").is_dir()
    assert not [path for path in (tmp_path / "saved_models" / name).iterdir() if path.name.startswith(".tmp")]
    assert report["model"] and report["baselines"] and report["export"] == str(version_dir)
    report_dir = tmp_path / "reports" / name  # the evaluate verb may have rewritten it since, with the same keys
    assert set(json.loads((report_dir / "metrics.json").read_text())) == set(report)
    assert (report_dir / "metrics.md").read_text().count("|") > 10
    assert any(plot.endswith("learning_curves.png") for plot in report["plots"])
    for plot in report["plots"]:
        assert os.path.getsize(plot) > 1000
    assert (tmp_path / "runs" / name / "history.csv").exists()
    assert any((tmp_path / "runs" / name / "logs").rglob("*tfevents*"))


def test_export_contract_in_a_fresh_process_at_two_batch_sizes(trained):
    name, tmp_path, _ = trained
    contract = CONTRACTS[name]
    script = f"""
import json, numpy as np, tensorflow as tf
loaded = tf.saved_model.load({str(tmp_path / "saved_models" / name / "1")!r})
signature = loaded.signatures["serving_default"]
inputs = {{name: spec.dtype.name for name, spec in signature.structured_input_signature[1].items()}}
outputs = {{name: spec.dtype.name for name, spec in signature.structured_outputs.items()}}
results = []
for batch in (1, 4):
    if "text" in inputs:
        feed = {{"text": tf.constant(["A wonderful, moving film.", "", "Terrible.", "¡Magnífica! 素晴らしい"][:batch])}}
    else:
        prices = 100 * np.exp(np.cumsum(np.random.default_rng(batch).normal(0, 0.01, (batch, 40)), axis=1))
        feed = {{"prices": tf.constant(prices, tf.float32)}}
    results.append({{key: list(value.shape) for key, value in signature(**feed).items()}})
print(json.dumps({{"inputs": inputs, "outputs": outputs, "shapes": results}}))
"""
    found = run_without_our_code(script, tmp_path)
    assert found["inputs"] == {key: dtype.name for key, dtype in contract["inputs"].items()}
    assert found["outputs"] == {key: dtype.name for key, dtype in contract["outputs"].items()}
    for batch, shapes in zip((1, 4), found["shapes"]):
        assert all(shape[0] == batch for shape in shapes.values())
        if name == "stock_forecast":
            assert all(shape == [batch, stock_forecast.StockConfig.horizon] for shape in shapes.values())


def test_sentiment_answers_odd_texts(trained_sentiment):
    name, tmp_path, _ = trained_sentiment
    predict = pipeline.load_predictor(tmp_path / "saved_models" / name / "1")
    texts = ["", " ", "x" * 100000, "¡Qué película! 映画 🎬", "good " * 5000]
    outputs = predict({"text": np.array(texts, dtype=object)})
    assert np.all((outputs["probability"] >= 0) & (outputs["probability"] <= 1))
    assert set(outputs["label"]) <= {b"positive", b"negative"}


@pytest.mark.parametrize(
    "prices, message",
    [
        (np.full((1, 5), 100.0), "at least 10 days"),
        (np.array([[100.0] * 9 + [np.nan] * 3]), "NaN"),
        (np.array([[100.0] * 11 + [-1.0]]), "positive"),
        (np.array([[100.0] * 11 + [0.0]]), "positive"),
    ],
)
def test_stock_bad_prices_give_clear_errors(trained_stock, prices, message):
    name, tmp_path, _ = trained_stock
    signature = tf.saved_model.load(str(tmp_path / "saved_models" / name / "1")).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signature(prices=tf.constant(prices, tf.float32))
    good = signature(prices=tf.constant(np.full((2, 200), 50.0), tf.float32))  # longer than trained: cropped
    assert np.all(good["lower"].numpy() <= good["forecast"].numpy())
    assert np.all(good["forecast"].numpy() <= good["upper"].numpy())


def test_predict_evaluate_and_export_verbs(trained, capsys):
    name, tmp_path, _ = trained
    values = ["Gorgeous and deeply felt.", "A tedious mess."] if name == "sentiment" else [
        ",".join(str(100 + day % 7) for day in range(30))
    ]
    outputs = pipeline.main(APPS[name], ["predict", *values, *folders(tmp_path)])
    printed = capsys.readouterr().out
    assert len(next(iter(outputs.values()))) == len(values)
    assert ("positive" in printed or "negative" in printed) if name == "sentiment" else "80% interval" in printed
    report = pipeline.main(APPS[name], ["evaluate", "--quick", *folders(tmp_path)])
    assert report["model"]
    latest = pipeline.version_numbers(tmp_path / "saved_models" / name)[-1]
    version_dir = pipeline.main(APPS[name], ["export", "--quick", *folders(tmp_path)])
    assert int(version_dir.name) == latest + 1 and (version_dir / "saved_model.pb").exists()


def test_bad_cli_inputs_raise_value_errors(trained):
    name, tmp_path, _ = trained
    with pytest.raises(ValueError, match="Received"):
        pipeline.main(APPS[name], ["predict", *folders(tmp_path)])
    with pytest.raises(ValueError, match="Received: version=99"):
        pipeline.main(APPS[name], ["predict", "--version", "99", "1,2,3", *folders(tmp_path)])
    if name == "stock_forecast":
        with pytest.raises(ValueError, match="Received: 'abc'"):
            APPS[name].parse_inputs(["abc"])
        with pytest.raises(ValueError, match="same length"):
            APPS[name].parse_inputs(["1,2,3", "1,2"])


def test_export_is_atomic_and_numbered(tmp_path):
    base = tmp_path / "saved_models" / "app"
    (base / "3").mkdir(parents=True)
    (base / ".tmp-partial").mkdir()
    (base / "notes").mkdir()
    assert pipeline.version_numbers(base) == [3]


def test_history_is_aligned_with_the_backup_it_resumes_from(tmp_path):
    history = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1, 2, 3], "loss": [4.0, 3.0, 2.0, 1.0]}).to_csv(history, index=False)
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / training.STATE_FILE).write_text(json.dumps({"epoch": 2}))
    training.align_history(tmp_path / "backup", history)
    assert list(pd.read_csv(history)["epoch"]) == [0, 1]  # epochs 2 and 3 are trained again
    (tmp_path / "backup" / training.STATE_FILE).unlink()
    training.align_history(tmp_path / "backup", history)
    assert not history.exists()  # no backup: a fresh run


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="Received: epochs=0"):
        sentiment.SentimentConfig(epochs=0)
    with pytest.raises(ValueError, match="Received: patience=0"):
        sentiment.SentimentConfig(patience=0)
    with pytest.raises(ValueError, match="Received: distribute='cluster'"):
        stock_forecast.StockConfig(distribute="cluster")


def test_stock_windows_respect_the_time_split(capsys):
    prices = pd.DataFrame(
        {"A": np.linspace(10, 20, 40), "B": np.r_[np.full(5, np.nan), np.linspace(5, 6, 35)]},
        index=pd.bdate_range("2016-12-01", periods=40),
    )
    starts = stock_forecast.BUNDLED_SPLIT_DATES
    inputs, targets, tickers, dates = stock_forecast.make_windows(prices, 10, 3, "train", starts)
    assert inputs.shape[1:] == (10,) and targets.shape[1:] == (3,)
    assert all(date <= pd.Timestamp("2016-12-31") for date in dates)
    assert np.isfinite(inputs).all()  # the windows touching B's missing days are skipped, and said so
    assert "skipped 5 windows with missing" in capsys.readouterr().out
    test_inputs, _, _, test_dates = stock_forecast.make_windows(prices, 10, 3, "validation", starts)
    assert all(date >= pd.Timestamp("2017-01-01") for date in test_dates)


def epochs_logged(history):
    try:
        return list(pd.read_csv(history)["epoch"])
    except (FileNotFoundError, pd.errors.EmptyDataError):  # CSVLogger opens the file before epoch 1 ends
        return []


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_killed_training_resumes_where_it_stopped(tmp_path):
    arguments = ["train", "--quick", "--epochs", "12", *folders(tmp_path)]
    history = tmp_path / "runs" / "stock_forecast" / "history.csv"
    process = run_app("stock_forecast", arguments, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(epochs_logged(history)) < 2:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    epochs_before = epochs_logged(history)
    assert len(epochs_before) >= 2 and (tmp_path / "runs" / "stock_forecast" / "backup").exists()
    finished = run_app("stock_forecast", arguments)
    output, _ = finished.communicate(timeout=600)
    assert finished.returncode == 0, output[-3000:]
    epochs = epochs_logged(history)
    assert epochs[: len(epochs_before)] == epochs_before
    assert epochs == list(range(len(epochs)))  # resumed, not restarted: no epoch twice, none skipped
    assert not (tmp_path / "runs" / "stock_forecast" / "backup").exists()


@pytest.mark.slow
def test_two_local_workers_finish_with_the_same_weights(tmp_path):
    import keras

    ports = [free_port(), free_port()]
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
        workers.append(
            run_app(
                "sentiment",
                ["train", "--quick", "--distribute", "multi_worker", *folders(tmp_path)],
                environment={"TF_CONFIG": json.dumps(tf_config)},
            )
        )
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output[-3000:]
    chief = keras.models.load_model(tmp_path / "runs" / "sentiment" / "model.keras")
    other = keras.models.load_model(tmp_path / "runs" / "sentiment" / "worker-1" / "model.keras")
    for mine, theirs in zip(chief.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert (tmp_path / "saved_models" / "sentiment" / "1" / "saved_model.pb").exists()
    for history in (tmp_path / "runs" / "sentiment" / "history.csv", tmp_path / "runs" / "sentiment" / "worker-1" / "history.csv"):
        logged = pd.read_csv(history)
        assert len(logged) >= 1 and np.isfinite(logged[["loss", "val_loss"]].to_numpy()).all()


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    import keras

    weights = []
    for run in ("first", "second"):
        pipeline.main(APPS["stock_forecast"], ["train", "--quick", "--seed", "7", *folders(tmp_path / run)])
        model = keras.models.load_model(tmp_path / run / "runs" / "stock_forecast" / "model.keras")
        weights.append(model.get_weights())
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_training_state_stops_on_patience_and_before_an_epoch_past_the_time_budget():
    state = training.TrainingState()
    for loss in (1.0, 0.5, 0.7, 0.6):
        state.end_epoch(loss, seconds=10.0, patience=2, time_budget_minutes=0)
    assert (state.epoch, state.best_epoch, state.best_value, state.waited, state.seconds) == (4, 1, 0.5, 2, 40.0)
    assert state.stopped == "no validation improvement for 2 epochs" and state.finished(epochs=10)
    # A resumed run counts the time its killed attempts spent: 20 s, and epochs of up to 10 s.
    resumed = training.TrainingState(epoch=2, best_epoch=1, best_value=0.5, seconds=20.0, longest_epoch_seconds=10.0)
    resumed.end_epoch(0.4, seconds=4.0, patience=2, time_budget_minutes=0.5)  # 24 s + 10 s > 30 s
    assert "time budget of 0.5 minutes" in resumed.stopped and resumed.best_epoch == 2
    fresh = training.TrainingState()
    fresh.end_epoch(0.4, seconds=4.0, patience=2, time_budget_minutes=0.5)  # 4 s + 4 s <= 30 s
    assert not fresh.stopped and not fresh.finished(epochs=2) and fresh.finished(epochs=1)


def test_early_stopping_keeps_the_epoch_its_monitor_chooses(tmp_path):
    import keras

    # A hand-written history where the two monitors disagree, as the sentiment runs' did: the loss is lowest after
    # epoch 2, the accuracy highest after epoch 4.
    history = [
        {"val_loss": 0.50, "val_accuracy": 0.76},
        {"val_loss": 0.47, "val_accuracy": 0.77},
        {"val_loss": 0.48, "val_accuracy": 0.78},
        {"val_loss": 0.49, "val_accuracy": 0.79},
        {"val_loss": 0.51, "val_accuracy": 0.78},
        {"val_loss": 0.52, "val_accuracy": 0.77},
    ]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.optimizer.build(model.trainable_variables)
    expected = {"val_loss": (2, 4, 0.47), "val_accuracy": (4, 6, 0.79)}  # (epoch kept, epochs run, its value)
    for monitor, (kept, run, value) in expected.items():
        state = training.TrainingState()
        stopping = training.ResumableEarlyStopping(
            training.Backup(tmp_path / monitor, model, sentiment.SentimentConfig()), state, 2, 0, monitor
        )
        stopping.set_model(model)
        stopping.on_train_begin()
        for epoch, logs in enumerate(history):
            stopping.on_epoch_end(epoch, {"loss": 0.4, **logs})
            if model.stop_training:
                break
        model.stop_training = False
        assert (state.best_epoch + 1, state.epoch, state.best_value) == (kept, run, value)
    assert pipeline.config_from_arguments(
        APPS["sentiment"], pipeline.build_parser(APPS["sentiment"]).parse_args(["train", "--monitor", "val_accuracy"])
    ).monitor == "val_accuracy"


def test_a_monitor_that_is_no_validation_metric_is_refused(tmp_path):
    import keras

    with pytest.raises(ValueError, match="Received: monitor='accuracy'"):
        sentiment.SentimentConfig(monitor="accuracy")
    with pytest.raises(ValueError, match="multi_worker.*Received: monitor='val_accuracy'"):
        sentiment.SentimentConfig(monitor="val_accuracy", distribute="multi_worker")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.optimizer.build(model.trainable_variables)
    stopping = training.ResumableEarlyStopping(
        training.Backup(tmp_path, model, sentiment.SentimentConfig()), training.TrainingState(), 2, 0, "val_auc"
    )
    stopping.on_train_begin()
    with pytest.raises(ValueError, match=r"one of \['val_accuracy', 'val_loss'\]. Received: monitor='val_auc'"):
        stopping.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.7, "val_loss": 0.5, "val_accuracy": 0.7})


def test_time_budget_stops_fit_before_an_epoch_that_would_overrun(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.optimizer.build(model.trainable_variables)
    x, y = np.zeros((64, 2), "float32"), np.zeros((64, 1), "float32")

    class SlowEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.3)

    for minutes, epochs_run in ((0.5 / 60, 1), (0, 3)):  # 0.5 s: room for one 0.3 s epoch, not two; 0: no limit
        state = training.TrainingState()
        stopping = training.ResumableEarlyStopping(training.Backup(tmp_path / str(minutes), model, sentiment.SentimentConfig()), state, 5, minutes)
        history = model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0, callbacks=[SlowEpochs(), stopping])
        assert len(history.history["loss"]) == epochs_run and ("time budget" in state.stopped) == bool(minutes)
        assert training.read_state(tmp_path / str(minutes)) == state  # a rerun stops at once too
    with pytest.raises(ValueError, match="Received: time_budget_minutes=-1"):
        sentiment.SentimentConfig(time_budget_minutes=-1)


def test_backup_resumes_the_last_epoch_with_its_dropout_seeds_and_ends_with_the_best(tmp_path):
    import keras

    def model_with_dropout():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
        model.compile("adam", "mse")
        model.optimizer.build(model.trainable_variables)
        return model

    def values(model):
        return [variable.numpy() for variable in model.variables + model.optimizer.variables]

    inputs = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model, state, after_epoch = model_with_dropout(), training.TrainingState(), []
    backup = training.Backup(tmp_path / "backup", model, sentiment.SentimentConfig())
    assert len(training.random_states(model)) == 1  # the dropout's seed, which the weights do not hold
    for loss in (1.0, 0.5, 0.7):  # the second epoch is the best
        model.fit(inputs, inputs[:, :2], epochs=1, verbose=0)
        state.end_epoch(loss, seconds=1.0, patience=3, time_budget_minutes=0)
        backup.save(state)
        after_epoch.append(values(model))
    backup.checkpoint.write(backup.checkpoint_path(4))  # killed after the next checkpoint, before its state
    assert sorted(path.name.split(".")[0] for path in backup.directory.glob("after-*.index")) == [
        "after-2-epochs", "after-3-epochs", "after-4-epochs",
    ]  # fmt: skip
    other = model_with_dropout()
    other_backup = training.Backup(tmp_path / "backup", other, sentiment.SentimentConfig())
    resumed = other_backup.restore()
    assert resumed == state
    for restored, saved in zip(values(other), after_epoch[2]):
        np.testing.assert_array_equal(restored, saved)
    other_backup.finish(resumed)
    for restored, saved in zip(values(other), after_epoch[1]):
        np.testing.assert_array_equal(restored, saved)
    assert not backup.directory.exists()


def test_a_backup_resumes_only_under_the_settings_that_made_it(tmp_path):
    config = sentiment.SentimentConfig(data_path="reviews.csv")
    state = training.TrainingState(epoch=2, settings=training.run_settings(config))
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / training.STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)))
    training.check_backup(tmp_path / "backup", config.replace(epochs=20, time_budget_minutes=5.0))  # may change
    with pytest.raises(ValueError, match=r"other settings.*'data_path': \('reviews.csv', 'other.csv'\)"):
        training.check_backup(tmp_path / "backup", config.replace(data_path="other.csv"))
    assert (tmp_path / "backup" / training.STATE_FILE).exists()  # nothing deleted
    training.check_backup(tmp_path / "nothing", config)  # no backup: a fresh run


# Trains stock_forecast as `python -m apps.stock_forecast ARGUMENTS...`, killed with SIGKILL in the backup
# of the given epoch: `mid-save` after its checkpoint is written and before state.json names it,
# `after-save` once it is named; `none` never kills. The learning rate makes the validation loss rise
# after epoch 2 (of the model on fixed-scale returns: window scaling keeps it falling), so early stopping's
# saved state decides where training ends and with which weights.
KILLED_STOCK_TRAINING = """
import os, signal, sys
from apps import stock_forecast, training

stock_forecast.StockConfig.QUICK = {**stock_forecast.StockConfig.QUICK, "learning_rate": 0.01, "patience": 2,
                                    "window_scaling": False, "absolute_returns": False}
point, kill_epochs, arguments = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
save = training.Backup.save

def save_and_kill(backup, state):
    if point == "mid-save" and state.epoch == kill_epochs:
        backup.checkpoint.write(backup.checkpoint_path(state.epoch))
        os.kill(os.getpid(), signal.SIGKILL)
    save(backup, state)
    if point == "after-save" and state.epoch == kill_epochs:
        os.kill(os.getpid(), signal.SIGKILL)

training.Backup.save = save_and_kill
stock_forecast.main(arguments)
"""


def train_stock_killed(point, kill_epochs, folder):
    arguments = ["train", "--quick", "--epochs", "6", *folders(folder)]
    process = run_python(["-c", KILLED_STOCK_TRAINING, point, str(kill_epochs), *arguments])
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


@pytest.fixture(scope="module")
def uninterrupted_stock_training(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    returncode, output = train_stock_killed("none", 0, folder)
    assert returncode == 0, output[-3000:]
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("point, kill_epochs", [("mid-save", 2), ("after-save", 3)])
def test_resumed_training_exports_exactly_what_an_uninterrupted_run_exports(
    uninterrupted_stock_training, tmp_path, point, kill_epochs
):
    """Killed after epoch 2 or 3 and rerun, training ends as if never killed, to the last bit: the
    variables, early stopping's state, the dropout seeds, the shuffle order and the time budget's clock
    are all resumed (apps/training.py)."""
    import keras

    returncode, output = train_stock_killed(point, kill_epochs, tmp_path)
    assert returncode == -signal.SIGKILL, output[-3000:]
    backup_dir = tmp_path / "runs" / "stock_forecast" / "backup"
    assert training.read_state(backup_dir).epoch == (kill_epochs - 1 if point == "mid-save" else kill_epochs)
    returncode, output = train_stock_killed("none", 0, tmp_path)
    assert returncode == 0, output[-3000:]
    assert "Resuming after epoch" in output and not backup_dir.exists()

    runs = [folder / "runs" / "stock_forecast" for folder in (uninterrupted_stock_training, tmp_path)]
    expected, resumed = [pd.read_csv(run / "history.csv") for run in runs]
    assert len(expected) < 6, "early stopping should end the run, or the test does not exercise its state"
    pd.testing.assert_frame_equal(resumed, expected, check_exact=True)
    expected, resumed = [keras.models.load_model(run / "model.keras").get_weights() for run in runs]
    for got, want in zip(resumed, expected):
        np.testing.assert_array_equal(got, want)
    prices = tf.constant(100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, (4, 40)), axis=1)), tf.float32)
    expected, resumed = [
        tf.saved_model.load(str(folder / "saved_models" / "stock_forecast" / "1")).signatures["serving_default"](prices=prices)
        for folder in (uninterrupted_stock_training, tmp_path)
    ]
    for name in expected:
        np.testing.assert_array_equal(resumed[name].numpy(), expected[name].numpy())


def test_report_says_how_many_epochs_ran_and_which_one_the_model_keeps():
    state = training.TrainingState()
    for loss in (1.0, 0.5, 0.7, 0.6):  # best after the second epoch, stopped by patience after the fourth
        state.end_epoch(loss, seconds=12.5, patience=2, time_budget_minutes=0)
    summary = pipeline.fitting_summary(state)
    assert summary == {"epochs": 4, "best_epoch": 2, "fit_seconds": 50.0, "seconds_per_epoch": 12.5,
                       "stopped": "no validation improvement for 2 epochs", "averaged_epochs": []}  # fmt: skip
    report = {"app": "sentiment", "dataset": "bundled", "model": {"accuracy": 0.5}, "baselines": {}, "plots": [],
              "export": "saved_models/sentiment/1", "train_seconds": 61.0, "fitting": summary}  # fmt: skip
    assert "(4 epochs, 12 s each on average, best epoch 2; stopped: no validation improvement for 2 epochs)" in (
        pipeline.markdown_report(report)
    )
    assert pipeline.fitting_summary(training.TrainingState())["seconds_per_epoch"] is None  # nothing ran
    report["fitting"] = {**summary, "averaged_epochs": [1, 2]}
    assert "best epoch 2, weights averaged over epochs 1-2;" in pipeline.markdown_report(report)


def tiny_regression():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    model.optimizer.build(model.trainable_variables)
    inputs = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    return model, inputs, inputs.sum(axis=1, keepdims=True)


def test_averaged_weights_are_the_mean_of_the_epochs_before_the_best(tmp_path):
    import keras

    model, inputs, targets = tiny_regression()
    after_epoch = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after_epoch.append([weight.numpy() for weight in self.model.weights])

    state = training.TrainingState()
    callbacks = [Record(), training.EpochWeights(tmp_path / "weights", state, 3),
                 training.ResumableEarlyStopping(training.Backup(tmp_path / "backup", model, sentiment.SentimentConfig()),
                                                 state, patience=10, time_budget_minutes=0)]  # fmt: skip
    model.fit(inputs, targets, validation_data=(inputs, targets), epochs=5, verbose=0, callbacks=callbacks)
    assert state.best_epoch == 4  # the loss falls every epoch
    # Epochs 1 and 2 can no longer be among the 3 that end at a best epoch (the pruning lags one epoch).
    assert sorted(path.name for path in (tmp_path / "weights").iterdir()) == [
        f"epoch-{epoch}.weights.h5" for epoch in (2, 3, 4, 5)
    ]
    for count, last_epoch, expected in ((3, 5, [3, 4, 5]), (2, 4, [3, 4]), (1, 2, [2])):
        epochs = training.average_epoch_weights(model, tmp_path / "weights", last_epoch, count)
        assert epochs == expected
        for weight, *saved in zip(model.weights, *(after_epoch[epoch - 1] for epoch in epochs)):
            np.testing.assert_allclose(weight.numpy(), np.mean(saved, axis=0), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"Received: epochs \[1\] missing"):  # pruned: said, not left out
        training.average_epoch_weights(model, tmp_path / "weights", 3, 3)


def test_fit_ends_with_the_average_of_the_last_epochs_and_a_fresh_run_forgets_old_ones(tmp_path):
    model, inputs, targets = tiny_regression()
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(16)
    stale = tmp_path / "epoch_weights" / "epoch-3.weights.h5"
    stale.parent.mkdir()
    stale.write_text("another run's")
    config = pipeline_config(epochs=3, average_epochs=2)
    state = pipeline.fit(model, dataset, dataset, config, tmp_path, tmp_path / "history.csv")
    assert state.best_epoch == 2 and state.averaged_epochs == [2, 3]
    clone, _, _ = tiny_regression()
    saved = []
    for epoch in (2, 3):
        clone.load_weights(training.epoch_weights_path(tmp_path / "epoch_weights", epoch))
        saved.append([weight.numpy() for weight in clone.weights])
    for weight, *values in zip(model.weights, *saved):
        np.testing.assert_allclose(weight.numpy(), np.mean(values, axis=0), rtol=1e-6, atol=1e-7)
    # A run shorter than the average averages the epochs it has.
    model, _, _ = tiny_regression()
    state = pipeline.fit(model, dataset, dataset, pipeline_config(epochs=1, average_epochs=3), tmp_path / "short",
                         tmp_path / "short" / "history.csv")  # fmt: skip
    assert state.averaged_epochs == [1]


def pipeline_config(**changes):
    from apps.config import Config

    return Config(**changes)


def test_average_epochs_must_be_a_positive_count_and_not_multi_worker():
    from apps.config import Config

    for value in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"Received: average_epochs={value!r}"):
            Config(average_epochs=value)
    with pytest.raises(ValueError, match="Received: average_epochs=3, distribute='multi_worker'"):
        Config(average_epochs=3, distribute="multi_worker")
    app = sentiment.SentimentApp()
    arguments = pipeline.build_parser(app).parse_args(["train", "--average-epochs", "3"])
    assert pipeline.config_from_arguments(app, arguments).average_epochs == 3
    with pytest.raises(ValueError, match="Received: count=0"):
        training.average_epoch_weights(None, "unused", 3, 0)
