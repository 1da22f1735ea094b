"""The apps end to end: quick training, the export's layout and contract in a fresh process, bad inputs,
resuming a killed run, and multi-worker training."""

import json
import os
import signal
import socket
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from apps import pipeline, sentiment, stock_forecast
from serving.contracts import CONTRACTS
from tests.helpers import folders, run_app, run_without_our_code

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
    (tmp_path / "backup" / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    pipeline.align_history(tmp_path / "backup", history)
    assert list(pd.read_csv(history)["epoch"]) == [0, 1]  # epochs 2 and 3 are trained again
    (tmp_path / "backup" / "training_metadata.json").unlink()
    pipeline.align_history(tmp_path / "backup", history)
    assert not history.exists()  # no backup: a fresh run


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="Received: epochs=0"):
        sentiment.SentimentConfig(epochs=0)
    with pytest.raises(ValueError, match="Received: distribute='cluster'"):
        stock_forecast.StockConfig(distribute="cluster")


def test_stock_windows_respect_the_time_split(capsys):
    prices = pd.DataFrame(
        {"A": np.linspace(10, 20, 40), "B": np.r_[np.full(5, np.nan), np.linspace(5, 6, 35)]},
        index=pd.bdate_range("2016-12-01", periods=40),
    )
    inputs, targets, tickers, dates = stock_forecast.make_windows(prices, 10, 3, "train")
    assert inputs.shape[1:] == (10,) and targets.shape[1:] == (3,)
    assert all(date <= pd.Timestamp("2016-12-31") for date in dates)
    assert np.isfinite(inputs).all()  # the windows touching B's missing days are skipped, and said so
    assert "skipped 5 windows with missing" in capsys.readouterr().out
    test_inputs, _, _, test_dates = stock_forecast.make_windows(prices, 10, 3, "validation")
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


def test_time_budget_stops_before_an_epoch_that_would_overrun():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((64, 2), "float32"), np.zeros((64, 1), "float32")

    class SlowEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.3)

    budget = pipeline.TimeBudget(minutes=0.5 / 60)  # 0.5 s: room for one 0.3 s epoch, not two
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[SlowEpochs(), budget])
    assert len(history.history["loss"]) == 1 and budget.stopped_epoch == 0
    unlimited = pipeline.TimeBudget(minutes=0)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[unlimited])
    assert len(history.history["loss"]) == 3 and unlimited.stopped_epoch is None
    with pytest.raises(ValueError, match="Received: time_budget_minutes=-1"):
        sentiment.SentimentConfig(time_budget_minutes=-1)
