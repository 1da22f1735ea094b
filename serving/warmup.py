"""TF Serving's warmup requests: written into every export, replayed when a version loads, so that the first
client does not pay for the signature's first run (graph optimization, kernel and buffer setup).

TF Serving reads `assets.extra/tf_serving_warmup_requests` in a version folder at load time: a TFRecord file of
`tensorflow.serving.PredictionLog` records, at most 1000, and runs each before the version becomes AVAILABLE; a
record that fails fails the load. The local server does the same (`serving.models.Version.load`).
"""

import pathlib

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving refuses a version whose warmup file holds more


def predict_log(model_name, signature_name, inputs, signature_def):
    """A `PredictionLog` holding the `PredictRequest` of `inputs` (`{name: array}`), each tensor of the dtype
    that `signature_def` declares for it."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        if name not in signature_def.inputs:
            raise ValueError(f"Signature {signature_name!r} has no input {name!r}. Received inputs: {sorted(inputs)}; "
                             f"expected: {sorted(signature_def.inputs)}")  # fmt: skip
        dtype = tf.dtypes.as_dtype(signature_def.inputs[name].dtype)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value), dtype=dtype))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def write_warmup_requests(version_dir, model_name, example_batches, signature_defs, signature_name="serving_default"):
    """Writes the warmup file of `version_dir`: one request per batch of example inputs to `signature_name`, and
    to every other signature that takes exactly the same inputs (translation's `translate_greedy`, say), so
    that no first call of theirs runs cold either. Returns the file's path."""
    inputs = set(example_batches[0]) if example_batches else set()
    others = sorted(name for name, definition in signature_defs.items()
                    if name != signature_name and not name.startswith("__") and set(definition.inputs) == inputs)  # fmt: skip
    records = [(name, batch) for name in [signature_name, *others] for batch in example_batches]
    if not example_batches or len(records) > MAX_RECORDS:
        raise ValueError(f"Warmup takes 1 to {MAX_RECORDS} requests. Received: {len(example_batches)} example "
                         f"batches for {1 + len(others)} signatures")  # fmt: skip
    path = pathlib.Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for name, batch in records:
            writer.write(predict_log(model_name, name, batch, signature_defs[name]).SerializeToString())
    return path


def read_warmup_requests(version_dir):
    """The `PredictRequest`s of a version's warmup file, none without one. More than 1000 records, or a record
    other than a predict log (the only kind our signatures answer), fails, as it fails TF Serving's load."""
    path = pathlib.Path(version_dir) / WARMUP_FILE
    if not path.exists():
        return []
    requests = []
    for index, record in enumerate(tf.data.TFRecordDataset(str(path))):
        if index >= MAX_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) in {path}")
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"Warmup record {index} of {path} must be a predict_log. Received: {log.WhichOneof('log_type')}")
        requests.append(log.predict_log.request)
    return requests
