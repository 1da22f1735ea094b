"""A local server that speaks TF Serving's REST and gRPC APIs over the same export folders.

REST (as TF Serving's API documentation defines it):
    GET  /v1/models/{name}[/versions/{v} | /labels/{l}]             model status
    GET  /v1/models/{name}[/versions/{v} | /labels/{l}]/metadata    signature defs
    POST /v1/models/{name}[/versions/{v} | /labels/{l}]:predict     {"instances": [...]} or {"inputs": ...}
    POST ...:classify, ...:regress                                  400: our signatures are predict-only
gRPC: tensorflow.serving.PredictionService (Predict, GetModelMetadata; Classify and Regress answer
INVALID_ARGUMENT) and tensorflow.serving.ModelService (GetModelStatus, HandleReloadConfigRequest).

Bad input never crashes the server and never gets a 5xx: it gets a 4xx with {"error": "..."} over REST
and the matching status code over gRPC. With a metrics path (--monitoring_config_file), REST also answers
GET <path> with TF Serving's request metrics in Prometheus' format (serving/monitoring.py).
"""

import base64
import json
import re
import threading
import time
from concurrent import futures
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.models import ServingError, models_from_config, signature_def_map_json
from serving.monitoring import ServingMetrics

DEFAULT_SIGNATURE = "serving_default"
ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|:predict|:classify|:regress)?$"
)


# ---------------------------------------------------------------------------------------------------------
# Running a signature: shared by REST and gRPC
# ---------------------------------------------------------------------------------------------------------


def decode_strings(value):
    """JSON strings become UTF-8 bytes and {"b64": ...} objects their decoded bytes, at any depth."""
    if isinstance(value, list):
        return [decode_strings(item) for item in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise ServingError(400, f'A binary value must be {{"b64": "<base64>"}}. Received: {json.dumps(value)[:100]}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise ServingError(400, "Invalid base64 in a {\"b64\": ...} value") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise ServingError(400, f"Expected a string. Received: {json.dumps(value)[:100]}")


def input_tensor(name, value, spec):
    """A tensor for input `name` from JSON values or a NumPy array, checked against the signature's spec."""
    try:
        if spec.dtype == tf.string:
            array = np.array(value if isinstance(value, np.ndarray) else decode_strings(value), dtype=object)
            if array.dtype != object or any(not isinstance(item, bytes) for item in array.ravel()):
                raise ValueError("not all strings")
        else:
            if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
                raise ValueError("strings")
            array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except ServingError as error:
        raise ServingError(400, f"Input {name!r}: {error.message}") from None
    except (ValueError, TypeError, OverflowError) as error:
        raise ServingError(400, f"Input {name!r} must be {spec.dtype.name} of shape {spec.shape}. Received values "
                           f"that do not convert ({error})") from None
    if not spec.shape.is_compatible_with(array.shape):
        raise ServingError(400, f"Input {name!r} must have shape {spec.shape.as_list()} (-1/None: any). "
                           f"Received: shape {list(array.shape)}")
    return tf.constant(array, dtype=spec.dtype)


def model_error_message(message):
    """The model's own words from a TensorFlow error, without the graph's node and stack noise."""
    lines = [line.strip() for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(("Graph execution error", "Detected at node",
                                                                        "<stack traces", "[[{{node"))]
    return " ".join(useful) or message


def run_signature(version, signature_name, inputs):
    """Outputs `{name: np.ndarray}` of one signature of one loaded version, batched with concurrent
    requests when the version has a batcher (TF Serving's rules decide which do: serving/batching.py)."""
    signature_name = signature_name or DEFAULT_SIGNATURE
    if signature_name not in version.signatures:
        raise ServingError(400, f"Serving signature name: {signature_name!r} not found in signature def. "
                           f"Available: {sorted(version.signatures)}")
    specs = version.signatures[signature_name].structured_input_signature[1]
    if sorted(inputs) != sorted(specs):
        raise ServingError(400, f"Signature {signature_name!r} takes inputs {sorted(specs)}. Received: {sorted(inputs)}")
    tensors = {name: input_tensor(name, value, specs[name]) for name, value in inputs.items()}
    try:
        return version.run(signature_name, tensors)
    except tf.errors.InvalidArgumentError as error:
        raise ServingError(400, model_error_message(error.message)) from None


# ---------------------------------------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------------------------------------


def json_value(name, array):
    """Output values as TF Serving writes them: strings as UTF-8 text, or base64 for `*_bytes` outputs."""
    if array.dtype == object:
        def encode(item):
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(item).decode("ascii")}
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(item).decode("ascii")}

        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def predict_rest(version, body):
    if not isinstance(body, dict):
        raise ServingError(400, f"The request body must be a JSON object. Received: {type(body).__name__}")
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise ServingError(400, "signature_name must be a string")
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(400, 'The request must have exactly one of "instances" (row format) or "inputs" (columnar format)')
    if signature_name not in version.signatures:
        run_signature(version, signature_name, {})  # raises the unknown-signature error
    names = sorted(version.signatures[signature_name].structured_input_signature[1])
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingError(400, '"instances" must be a non-empty list')
        if all(isinstance(item, dict) and "b64" not in item for item in instances):
            for item in instances:
                if sorted(item) != names:
                    raise ServingError(400, f"Each instance must have the inputs {names}. Received: {sorted(item)}")
            inputs = {name: [item[name] for item in instances] for name in names}
        elif len(names) == 1:
            inputs = {names[0]: instances}
        else:
            raise ServingError(400, f"With several inputs {names}, each instance must be an object naming them")
        outputs = run_signature(version, signature_name, inputs)
        batch = {len(value) for value in outputs.values()}
        if len(batch) != 1:
            raise ServingError(400, "The outputs differ in batch size: use the columnar format (\"inputs\")")
        if len(outputs) == 1:
            ((name, value),) = outputs.items()
            return {"predictions": json_value(name, value)}
        values = {name: json_value(name, value) for name, value in outputs.items()}
        return {"predictions": [{name: values[name][row] for name in values} for row in range(batch.pop())]}
    columns = body["inputs"]
    if not (isinstance(columns, dict) and sorted(columns) == names):
        if len(names) != 1:
            raise ServingError(400, f'"inputs" must be an object with the inputs {names}')
        columns = {names[0]: columns}
    outputs = run_signature(version, signature_name, columns)
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return {"outputs": json_value(name, value)}
    return {"outputs": {name: json_value(name, value) for name, value in outputs.items()}}


def metadata(model, version):
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(version.number)},
        "metadata": {"signature_def": {"signature_def": signature_def_map_json(version)}},
    }


def parse_version(text):
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise ServingError(400, f"A version is a positive integer. Received: {text!r}")
    return int(text)


class RestHandler(BaseHTTPRequestHandler):
    server_version = "rnn-suite-model-server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *arguments):  # noqa: A002 -- the stdlib's signature
        if self.server.verbose:
            super().log_message(format, *arguments)

    def reply(self, status, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        match = ROUTE.match(self.path.split("?")[0])
        if not match:
            raise ServingError(404, f"Malformed request: {self.command} {self.path[:200]}")
        model = self.server.manager.model(match["name"])
        return model, parse_version(match["version"]), match["label"], match["action"]

    def handle_safely(self, work):
        """Replies with `work()`'s answer or its error; returns the canonical status, for the metrics."""
        try:
            self.reply(HTTPStatus.OK, work())
            return "OK"
        except ServingError as error:
            self.reply(error.code, {"error": error.message})
            return error.status
        except Exception as error:  # noqa: BLE001 -- a bug of ours must not take the server down
            self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"Internal error: {type(error).__name__}: {error}"})
            return "INTERNAL"

    def record(self, started, status):
        """Counts a predict request to a served model, as TF Serving's metrics do."""
        match = ROUTE.match(self.path.split("?")[0])
        if self.server.metrics is not None and match and match["action"] == ":predict":
            if match["name"] in self.server.manager.models:
                self.server.metrics.record(match["name"], status, time.perf_counter() - started, "REST")

    def discard(self, length, most=64 << 20):
        """Reads and drops an oversized body (up to `most` bytes), so the client reads our 413."""
        remaining = min(length, most)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def do_GET(self):  # noqa: N802 -- http.server's naming
        if self.server.metrics is not None and self.path.split("?")[0] == self.server.metrics_path:
            content_type, page = self.server.metrics.exposition()
            self.reply(HTTPStatus.OK, page, content_type)
            return

        def work():
            model, version, label, action = self.route()
            if action == "/metadata":
                return metadata(model, model.resolve(version, label))
            if action is not None:
                raise ServingError(405, f"{action} needs POST")
            if label is not None:
                version = model.resolve(version, label).number
            return {"model_version_status": model.statuses(version)}

        self.handle_safely(work)

    def within_deadline(self, function, *arguments):
        """`function(*arguments)`, or DEADLINE_EXCEEDED (HTTP 504, as TF Serving answers) once it has run longer
        than --rest_api_timeout_in_ms; the computation cannot be stopped and ends unseen, the server serves on."""
        future = self.server.executor.submit(function, *arguments)
        try:
            return future.result(timeout=self.server.timeout_seconds)
        except futures.TimeoutError:
            raise ServingError(504, f"Deadline exceeded: no answer within --rest_api_timeout_in_ms "
                               f"({1000 * self.server.timeout_seconds:.0f} ms)", status="DEADLINE_EXCEEDED") from None

    def do_POST(self):  # noqa: N802
        def work():
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise ServingError(411, "A Content-Length header is required")
            if int(length) > self.server.max_body_bytes:
                self.close_connection = True
                self.discard(int(length))
                raise ServingError(413, f"The request body is {length} bytes; the limit is {self.server.max_body_bytes}")
            raw = self.rfile.read(int(length))
            model, version, label, action = self.route()
            if action in (":classify", ":regress"):
                raise ServingError(400, f"Signatures of {model.name!r} are predict signatures; {action[1:]} is not supported")
            if action != ":predict":
                raise ServingError(405, f"POST needs :predict, :classify or :regress. Received: {self.path[:200]}")
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ServingError(400, f"The body is not valid UTF-8 JSON: {error}") from None
            return self.within_deadline(predict_rest, model.resolve(version, label), body)

        started = time.perf_counter()
        self.record(started, self.handle_safely(work))


def make_rest_server(manager, host, port, max_body_bytes=16 << 20, timeout_seconds=30.0, verbose=False, metrics=None,
                     metrics_path=None):  # fmt: skip
    server = ThreadingHTTPServer((host, port), RestHandler)
    server.daemon_threads = True
    server.manager = manager
    server.metrics, server.metrics_path = metrics, metrics_path
    server.max_body_bytes = max_body_bytes
    server.verbose = verbose
    server.timeout_seconds = timeout_seconds
    RestHandler.timeout = timeout_seconds  # a client that stops sending its body is dropped after it too
    server.executor = futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rest-predict")
    return server


# ---------------------------------------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------------------------------------


def grpc_abort(context, error):
    context.abort(grpc.StatusCode[error.status], error.message)


def resolve_spec(manager, model_spec):
    model = manager.model(model_spec.name)
    choice = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if choice == "version" else None
    label = model_spec.version_label if choice == "version_label" else None
    return model, model.resolve(version, label)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager, metrics=None):
        self.manager = manager
        self.metrics = metrics

    def Predict(self, request, context):  # noqa: N802 -- gRPC's naming
        started, status = time.perf_counter(), "INTERNAL"
        try:
            response = self.predict(request)
            status = "OK"
            return response
        except ServingError as error:
            status = error.status
            grpc_abort(context, error)
        finally:
            if self.metrics is not None and request.model_spec.name in self.manager.models:
                self.metrics.record(request.model_spec.name, status, time.perf_counter() - started, "GRPC")

    def predict(self, request):
        """The PredictResponse of `request`; a client's error raises `ServingError`."""
        model, version = resolve_spec(self.manager, request.model_spec)
        try:
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        except Exception as error:  # noqa: BLE001 -- a malformed TensorProto
            raise ServingError(400, f"Malformed input tensor: {error}") from None
        outputs = run_signature(version, request.model_spec.signature_name, inputs)
        wanted = list(request.output_filter) or list(outputs)
        unknown = [name for name in wanted if name not in outputs]
        if unknown:
            raise ServingError(400, f"output_filter names unknown outputs {unknown}; outputs: {sorted(outputs)}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = version.number
        response.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            model, version = resolve_spec(self.manager, request.model_spec)
            if list(request.metadata_field) != ["signature_def"]:
                raise ServingError(400, f"metadata_field must be ['signature_def']. Received: {list(request.metadata_field)}")
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, signature_def in version.signature_defs.items():
                signature_map.signature_def[name].CopyFrom(signature_def)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = version.number
            response.metadata["signature_def"].Pack(signature_map)
            return response
        except ServingError as error:
            grpc_abort(context, error)

    def Classify(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "These models have predict signatures only; use Predict")

    def Regress(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "These models have predict signatures only; use Predict")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            model = self.manager.model(request.model_spec.name)
            choice = request.model_spec.WhichOneof("version_choice")
            version = request.model_spec.version.value if choice == "version" else None
            if choice == "version_label":
                version = model.resolve(None, request.model_spec.version_label).number
            response = get_model_status_pb2.GetModelStatusResponse()
            for status in model.statuses(version):
                entry = response.model_version_status.add()
                entry.version = int(status["version"])
                entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status["state"])
                entry.status.error_code = 0 if status["status"]["error_code"] == "OK" else 2
                entry.status.error_message = status["status"]["error_message"]
            return response
        except ServingError as error:
            grpc_abort(context, error)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        try:
            models = models_from_config(request.config)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        self.manager.replace_models(models)
        return model_management_pb2.ReloadConfigResponse()


def make_grpc_server(manager, host, port, max_message_bytes=16 << 20, workers=8, metrics=None):
    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(manager, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise ValueError(f"Cannot bind the gRPC port. Received: {host}:{port}")
    return server, bound


class ModelServer:
    """Both servers over one model manager; `start()` returns once they listen, `stop()` ends them. With a
    `metrics_path`, predict requests are counted and timed, and REST serves them there (`metrics`)."""

    def __init__(self, manager, host="127.0.0.1", grpc_port=8500, rest_port=8501, max_body_bytes=16 << 20,
                 timeout_seconds=30.0, verbose=False, metrics_path=None):
        self.manager = manager
        self.metrics = ServingMetrics() if metrics_path else None
        self.rest = make_rest_server(manager, host, rest_port, max_body_bytes, timeout_seconds, verbose, self.metrics,
                                     metrics_path)  # fmt: skip
        self.grpc, self.grpc_port = make_grpc_server(manager, host, grpc_port, max_body_bytes, metrics=self.metrics)
        self.rest_port = self.rest.server_address[1]
        self.thread = threading.Thread(target=self.rest.serve_forever, daemon=True, name="rest")

    def start(self):
        self.manager.start()
        self.grpc.start()
        self.thread.start()
        return self

    def stop(self):
        self.manager.stop()
        self.rest.shutdown()
        self.rest.server_close()
        self.rest.executor.shutdown(wait=False)
        self.grpc.stop(grace=1).wait()
