"""Ask a TF Serving server (REST or gRPC) for an app's predictions from raw inputs, and print them.

    python -m serving.client sentiment "A triumph." "Dull and overlong."
    python -m serving.client stock_forecast 147.88,147.38,146.20,142.50,140.53,142.24,141.75,144.07,145.05,142.79
    python -m serving.client sentiment --grpc --version 2 "A triumph."

Inputs are parsed and predictions printed by serving/formats.py, as `python -m apps.<app> predict` does
with a local export, without loading apps/ or TensorFlow models. Request building and response parsing
are plain functions, so they are tested without a server.
"""

import argparse
import json
import pathlib
import sys
import urllib.error
import urllib.request

import numpy as np

from serving import contracts, formats

REST_PORT = 8501
GRPC_PORT = 8500
TIMEOUT_SECONDS = 30.0  # a cold model's first request loads it; 30 s is TF Serving's own REST timeout


class ServingError(Exception):
    """The server answered with an error, or could not be reached."""


# ---------------------------------------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------------------------------------


def rest_url(host, port, model_name, version=None, label=None):
    """`http://host:port/v1/models/<name>[/versions/<v> | /labels/<l>]:predict`."""
    if version is not None and label is not None:
        raise ValueError(f"Give a version or a label, not both. Received: version={version}, label={label!r}")
    path = f"/v1/models/{model_name}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{label}"
    return f"http://{host}:{port}{path}:predict"


def rest_body(inputs, signature=contracts.SIGNATURE):
    """The row-format request `{"signature_name": ..., "instances": [{name: value, ...}, ...]}`."""
    names = sorted(inputs)
    size = len(inputs[names[0]])
    instances = [{name: json_value(inputs[name][row]) for name in names} for row in range(size)]
    return {"signature_name": signature, "instances": instances}


def json_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse_rest_response(body, output_names):
    """`{name: np.ndarray}` from a row-format answer `{"predictions": [{name: value, ...}, ...]}`.

    Strings come back as bytes, as from the SavedModel itself. An `{"error": ...}` body raises
    `ServingError` with the server's message.
    """
    if "error" in body:
        raise ServingError(body["error"])
    if "predictions" not in body:
        raise ServingError(f"The answer has no 'predictions'. Received keys: {sorted(body)}")
    rows = body["predictions"]
    if rows and not isinstance(rows[0], dict):  # a signature with one output answers bare values
        rows = [{output_names[0]: row} for row in rows]
    elif rows:
        # The answer's own names: an export may return other outputs than the contract's (a sentiment
        # model of more than two classes gives `probabilities`, not `probability`).
        output_names = [name for name in output_names if name in rows[0]] + sorted(set(rows[0]) - set(output_names))
    outputs = {}
    for name in output_names:
        values = [row[name] for row in rows]
        if values and isinstance(np.ravel(values)[0], str):
            outputs[name] = np.vectorize(lambda text: text.encode("utf-8"), otypes=[object])(np.array(values))
        else:
            outputs[name] = np.array(values, dtype=np.float32)
    return outputs


def send_rest(url, body, timeout=TIMEOUT_SECONDS):
    """POSTs `body` as JSON; returns the decoded answer, or raises `ServingError` with the server's error."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            message = json.loads(text).get("error", text)
        except ValueError:
            message = text
        raise ServingError(f"HTTP {error.code} from {url}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ServingError(f"Cannot reach {url}: {getattr(error, 'reason', error)}") from None


# ---------------------------------------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------------------------------------


def grpc_request(inputs, model_name, version=None, label=None, signature=contracts.SIGNATURE, dtypes=None):
    """A `PredictRequest` with one tensor per input, e.g. `text` as a string tensor of shape [batch].

    `dtypes` (`{input name: tf.DType}`, from the app's contract) fixes each tensor's type; without it,
    text is a string tensor and numbers float32."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if version is not None and label is not None:
        raise ValueError(f"Give a version or a label, not both. Received: version={version}, label={label!r}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    elif label is not None:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        value = np.asarray(value)
        dtype = tf.string if value.dtype == object or value.dtype.kind in "SU" else tf.float32
        if dtypes and name in dtypes:
            dtype = dtypes[name]
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def parse_grpc_response(response):
    """`{name: np.ndarray}` from a `PredictResponse` (strings as bytes)."""
    import tensorflow as tf

    return {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}


def send_grpc(host, port, request, timeout=TIMEOUT_SECONDS):
    """Sends a `PredictRequest`; raises `ServingError` with the gRPC status on failure."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"gRPC {error.code().name} from {host}:{port}: {error.details()}") from None


def remote_signature(model_name, signature, host="127.0.0.1", port=GRPC_PORT, timeout=TIMEOUT_SECONDS):
    """A signature of a served model as a local callable, over gRPC: keyword tensors in, `{output: tf.Tensor}` out,
    as a loaded SavedModel's signature answers. Code written for the export runs against the server unchanged
    (the speech app's `listen --server` carries its `stream` state across calls this way)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"{host}:{port}"))

    def call(**inputs):
        request = grpc_request({name: np.asarray(value) for name, value in inputs.items()}, model_name, signature=signature)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"gRPC {error.code().name} from {host}:{port}: {error.details()}") from None
        return {name: tf.constant(array) for name, array in parse_grpc_response(response).items()}

    return call


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m serving.client", description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=sorted(contracts.CONTRACTS))
    parser.add_argument("values", nargs="*", help="raw inputs: texts, comma-separated prices (oldest first) or WAV paths")
    parser.add_argument("--file", help="a file with one raw input per line")
    parser.add_argument("--grpc", action="store_true", help="use gRPC (default port 8500) instead of REST (8501)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help=f"default {REST_PORT}, or {GRPC_PORT} with --grpc")
    parser.add_argument("--model-name", dest="model_name", help="default: the app's name")
    versions = parser.add_mutually_exclusive_group()
    versions.add_argument("--version", type=int, help="a version number (default: what the server serves)")
    versions.add_argument("--label", help="a version label from models.config, e.g. stable or canary")
    parser.add_argument("--signature", default=contracts.SIGNATURE)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds")
    return parser


def predict(app_name, inputs, grpc=False, host="127.0.0.1", port=None, model_name=None, version=None,
            label=None, signature=contracts.SIGNATURE, timeout=TIMEOUT_SECONDS):
    """`{output name: np.ndarray}` for raw `inputs` from the server, over REST or gRPC."""
    model_name = model_name or app_name
    if grpc:
        dtypes = contracts.CONTRACTS[app_name]["inputs"]
        request = grpc_request(inputs, model_name, version, label, signature, dtypes)
        return parse_grpc_response(send_grpc(host, port or GRPC_PORT, request, timeout))
    url = rest_url(host, port or REST_PORT, model_name, version, label)
    answer = send_rest(url, rest_body(inputs, signature), timeout)
    return parse_rest_response(answer, list(contracts.CONTRACTS[app_name]["outputs"]))


def main(argv=None):
    arguments = build_parser().parse_intermixed_args(argv)  # options may follow the values
    values = list(arguments.values)
    try:
        if arguments.file:
            values += pathlib.Path(arguments.file).read_text().splitlines()
        if not values:
            raise ValueError("Give inputs on the command line or with --file. Received: none")
        inputs = formats.PARSERS[arguments.app](values)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        outputs = predict(
            arguments.app, inputs, arguments.grpc, arguments.host, arguments.port, arguments.model_name,
            arguments.version, arguments.label, arguments.signature, arguments.timeout,
        )  # fmt: skip
    except ServingError as error:
        print(f"server error: {error}", file=sys.stderr)
        return 1
    print(formats.FORMATTERS[arguments.app](inputs, outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
