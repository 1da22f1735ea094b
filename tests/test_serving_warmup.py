"""TF Serving's warmup file in every export: it parses as PredictionLog records of the app's contract, and the
local server replays each record when it loads a version, failing the load where TF Serving would."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import contracts, warmup
from serving.models import LoadOptions, Version, read_signature_defs

APPS = sorted(contracts.CONTRACTS)


def export_of(trained_app, name):
    _, trained_path, _ = trained_app(name)
    return trained_path / "saved_models" / name / "1"


def prediction_logs(path):
    """The records of a TFRecord file, parsed as TF Serving parses them: PredictionLog messages."""
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in tf.data.TFRecordDataset(str(path))]


@pytest.mark.parametrize("name", APPS)
def test_every_export_writes_predict_logs_of_its_example_inputs(trained_app, name):
    version_dir = export_of(trained_app, name)
    logs = prediction_logs(version_dir / "assets.extra" / "tf_serving_warmup_requests")
    assert 1 <= len(logs) <= warmup.MAX_RECORDS
    signatures = tf.saved_model.load(str(version_dir)).signatures
    for log in logs:
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == name
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        assert {key: tf.dtypes.as_dtype(proto.dtype) for key, proto in request.inputs.items()} == contracts.CONTRACTS[name]["inputs"]
        signature = signatures[request.model_spec.signature_name]
        outputs = signature(**{key: tf.constant(value) for key, value in inputs.items()})  # a valid request
        assert {len(value) for value in outputs.values()} == {len(next(iter(inputs.values())))}
    # Every signature that takes the contract's inputs is warmed, not only serving_default.
    same_inputs = {key for key, function in signatures.items()
                   if set(function.structured_input_signature[1]) == set(contracts.CONTRACTS[name]["inputs"])}  # fmt: skip
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == same_inputs
    if name == "translation":
        assert same_inputs == {"serving_default", "translate_greedy", "translate_with_attention"}
    assert len({tuple(log.predict_log.request.inputs[key].tensor_shape.dim[0].size for key in log.predict_log.request.inputs)
                for log in logs}) > 1, "the examples come at two batch sizes"


def replayed(monkeypatch, version_dir, options):
    """`(version, [(signature name, {input: shape})])`: a version loaded with `options`, and the runs its load made."""
    runs = []
    run = Version.run

    def recording(self, signature_name, tensors):
        runs.append((signature_name, {key: tuple(value.shape) for key, value in tensors.items()}))
        return run(self, signature_name, tensors)

    monkeypatch.setattr(Version, "run", recording)
    version = Version(1, version_dir)
    version.load(options)
    return version, runs


def test_the_server_replays_each_record_at_load_and_only_with_warmup_on(trained_app, monkeypatch):
    version_dir = export_of(trained_app, "translation")
    expected = [(log.predict_log.request.model_spec.signature_name,
                 {key: tuple(dim.size for dim in proto.tensor_shape.dim) for key, proto in log.predict_log.request.inputs.items()})
                for log in prediction_logs(version_dir / warmup.WARMUP_FILE)]  # fmt: skip
    version, runs = replayed(monkeypatch, version_dir, LoadOptions())
    assert version.state == "AVAILABLE" and runs == expected
    version, runs = replayed(monkeypatch, version_dir, LoadOptions(warmup=False))
    assert version.state == "AVAILABLE" and runs == []


def test_a_failing_or_oversized_warmup_file_fails_the_load(trained_app, tmp_path):
    source = export_of(trained_app, "stock_forecast")
    signature_defs = read_signature_defs(source)
    bad = tmp_path / "bad"
    shutil.copytree(source, bad)
    warmup.write_warmup_requests(bad, "stock_forecast", [{"prices": np.full((1, 20), -1.0, np.float32)}], signature_defs)
    version = Version(1, bad)
    version.load()
    assert version.state == "END" and "positive" in version.error
    oversized = tmp_path / "oversized"
    shutil.copytree(source, oversized)
    with tf.io.TFRecordWriter(str(oversized / warmup.WARMUP_FILE)) as writer:
        record = warmup.predict_log("stock_forecast", contracts.SIGNATURE, {"prices": np.full((1, 20), 100.0, np.float32)},
                                    signature_defs[contracts.SIGNATURE]).SerializeToString()
        for _ in range(warmup.MAX_RECORDS + 1):
            writer.write(record)
    version = Version(1, oversized)
    version.load()
    assert version.state == "END" and "exceeds the maximum (1000)" in version.error
