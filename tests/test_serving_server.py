"""The local server over real sockets on 127.0.0.1: TF Serving's REST and gRPC contracts, errors, version
changes while clients run, concurrent load and fuzzed requests. Every loop is bounded."""

import base64
import concurrent.futures
import json
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from serving.batching import BatchingConfig
from serving.models import LoadOptions, Model, ModelManager, models_from_config_file
from serving.server import ModelServer
from tests.helpers import copy_exports, grpc_stubs, rest

CONFIG = """model_config_list {{
  config {{ name: "sentiment" base_path: "{sentiment}" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }} version_labels {{ key: "stable" value: 1 }} }}
  config {{ name: "stock_forecast" base_path: "{stock}" model_platform: "tensorflow" }}
}}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory, trained_app):
    """Both apps' quick exports, copied into a fresh models folder and served on free ports."""
    root = tmp_path_factory.mktemp("served")
    copy_exports(trained_app, ("sentiment", "stock_forecast"), root)
    config = root / "models.config"
    config.write_text(CONFIG.format(sentiment=root / "sentiment", stock=root / "stock_forecast"))
    manager = ModelManager(models_from_config_file(config), poll_seconds=0.2)
    server = ModelServer(manager, grpc_port=0, rest_port=0, max_body_bytes=1 << 20).start()
    yield server, root
    server.stop()


@pytest.fixture(scope="module")
def served_batched(served):
    """The same exports behind a second server that batches every model, as TF Serving's --enable_batching
    without per-model parameters does: the strictest case for bad input."""
    _, root = served
    manager = ModelManager(models_from_config_file(root / "models.config"), poll_seconds=0,
                           options=LoadOptions(BatchingConfig()))  # fmt: skip
    server = ModelServer(manager, grpc_port=0, rest_port=0, max_body_bytes=1 << 20).start()
    yield server, root
    server.stop()


@pytest.fixture(params=["served", "served_batched"])
def either_server(request):
    """Each bad-input test runs against the server without batching and the one that batches everything."""
    return request.getfixturevalue(request.param)


PRICES = [[100.0 + np.sin(day / 3) for day in range(30)], [50.0 + day / 10 for day in range(30)]]


# --- REST: the request and response formats of TF Serving's API documentation -----------------------------


def test_rest_status_and_labels(served):
    server, _ = served
    status, body = rest(server, "GET", "/v1/models/sentiment")
    assert status == 200
    assert body == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                              "status": {"error_code": "OK", "error_message": ""}}]}
    assert rest(server, "GET", "/v1/models/sentiment/versions/1")[0] == 200
    assert rest(server, "GET", "/v1/models/sentiment/labels/stable")[1]["model_version_status"][0]["version"] == "1"


def test_rest_metadata_has_the_contract(served):
    server, _ = served
    status, body = rest(server, "GET", "/v1/models/stock_forecast/metadata")
    assert status == 200 and body["model_spec"]["name"] == "stock_forecast"
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["prices"]["dtype"] == "DT_FLOAT"
    assert sorted(signature["outputs"]) == ["forecast", "lower", "upper"]


def test_rest_row_format(served):
    server, _ = served
    status, body = rest(server, "POST", "/v1/models/sentiment:predict",
                        {"signature_name": "serving_default", "instances": ["A fine film.", "Awful.", ""]})
    assert status == 200 and len(body["predictions"]) == 3
    assert set(body["predictions"][0]) == {"probability", "label"}
    assert body["predictions"][0]["label"] in ("positive", "negative")
    # Instances may also name their input, and binary strings come as {"b64": ...}.
    named = rest(server, "POST", "/v1/models/sentiment/versions/1:predict",
                 {"instances": [{"text": "A fine film."}, {"text": {"b64": base64.b64encode(b"Awful.").decode()}}]})[1]
    assert named["predictions"][0] == body["predictions"][0]
    assert named["predictions"][1] == body["predictions"][1]


def test_rest_columnar_format(served):
    server, _ = served
    status, body = rest(server, "POST", "/v1/models/stock_forecast:predict", {"inputs": {"prices": PRICES}})
    assert status == 200 and sorted(body["outputs"]) == ["forecast", "lower", "upper"]
    assert np.array(body["outputs"]["forecast"]).shape == (2, 5)
    bare = rest(server, "POST", "/v1/models/stock_forecast:predict", {"inputs": PRICES})[1]
    assert bare == body
    rows = rest(server, "POST", "/v1/models/stock_forecast:predict", {"instances": PRICES})[1]
    np.testing.assert_allclose([row["forecast"] for row in rows["predictions"]], body["outputs"]["forecast"])


@pytest.mark.parametrize(
    "path, body, raw, status, message",
    [
        ("/v1/models/sentiment:predict", None, b"{not json", 400, "not valid UTF-8 JSON"),
        ("/v1/models/sentiment:predict", None, b'{"instances": ["\xff\xfe"]}', 400, "UTF-8"),
        ("/v1/models/sentiment:predict", {"instances": [1, 2]}, None, 400, "Input 'text'"),
        ("/v1/models/sentiment:predict", {"instances": ["a"], "inputs": ["a"]}, None, 400, "exactly one"),
        ("/v1/models/sentiment:predict", {"instances": ["a"], "signature_name": "nope"}, None, 400, "not found"),
        ("/v1/models/sentiment:predict", {"instances": [{"b64": "!!"}]}, None, 400, "base64"),
        ("/v1/models/stock_forecast:predict", {"instances": [[1.0, 2.0], [1.0]]}, None, 400, "prices"),
        ("/v1/models/stock_forecast:predict", {"instances": [["a"] * 12]}, None, 400, "float32"),
        ("/v1/models/stock_forecast:predict", {"instances": [[100.0] * 5]}, None, 400, "at least 10 days"),
        ("/v1/models/stock_forecast:predict", {"instances": [[100.0] * 11 + [-1.0]]}, None, 400, "positive"),
        ("/v1/models/stock_forecast:predict", {"instances": [[[100.0] * 12]]}, None, 400, "shape"),
        ("/v1/models/sentiment:classify", {"examples": []}, None, 400, "predict signatures"),
        ("/v1/models/unknown:predict", {"instances": ["a"]}, None, 404, "unknown model"),
        ("/v1/models/sentiment/versions/7:predict", {"instances": ["a"]}, None, 404, "not available"),
        ("/v1/models/sentiment/versions/x:predict", {"instances": ["a"]}, None, 400, "positive integer"),
        ("/v1/models/sentiment/labels/canary:predict", {"instances": ["a"]}, None, 404, "label"),
        ("/v1/models/..%2F..%2Fetc:predict", {"instances": ["a"]}, None, 404, "unknown model"),
        ("/v2/anything", {"instances": ["a"]}, None, 404, "Malformed"),
    ],
)
def test_rest_errors_are_clear_4xx(either_server, path, body, raw, status, message):
    server, _ = either_server
    code, payload = rest(server, "POST", path, body, raw)
    assert code == status and message in payload["error"]


def test_rest_oversized_payload_is_413(served):
    server, _ = served
    code, payload = rest(server, "POST", "/v1/models/sentiment:predict", {"instances": ["x" * (2 << 20)]})
    assert code == 413 and "limit" in payload["error"]
    assert rest(server, "GET", "/v1/models/sentiment")[0] == 200


# --- gRPC with the official stubs ----------------------------------------------------------------------------


def test_grpc_predict_round_trip_matches_rest(served):
    server, _ = served
    predictions, _ = grpc_stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "stock_forecast"
    request.model_spec.signature_name = "serving_default"
    request.inputs["prices"].CopyFrom(tf.make_tensor_proto(np.array(PRICES, np.float32)))
    response = predictions.Predict(request, timeout=30)
    assert response.model_spec.version.value == 1
    forecast = tf.make_ndarray(response.outputs["forecast"])
    rest_forecast = rest(server, "POST", "/v1/models/stock_forecast:predict", {"inputs": PRICES})[1]["outputs"]["forecast"]
    np.testing.assert_allclose(forecast, rest_forecast, rtol=1e-6)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sentiment"
    request.model_spec.version_label = "stable"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array([b"Moving and funny."], dtype=object)))
    request.output_filter.append("label")
    response = predictions.Predict(request, timeout=30)
    assert list(response.outputs) == ["label"] and tf.make_ndarray(response.outputs["label"])[0] in (b"positive", b"negative")


def test_grpc_metadata_and_status(served):
    server, _ = served
    predictions, models = grpc_stubs(server)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "sentiment"
    request.metadata_field.append("signature_def")
    response = predictions.GetModelMetadata(request, timeout=30)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    assert sorted(signature_map.signature_def["serving_default"].outputs) == ["label", "probability"]
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "sentiment"
    status = models.GetModelStatus(status_request, timeout=30)
    assert [(entry.version, entry.state) for entry in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]


@pytest.mark.parametrize(
    "model, inputs, code",
    [
        ("unknown", {"text": np.array([b"a"], dtype=object)}, grpc.StatusCode.NOT_FOUND),
        ("sentiment", {"words": np.array([b"a"], dtype=object)}, grpc.StatusCode.INVALID_ARGUMENT),
        ("sentiment", {"text": np.array([1.0], np.float32)}, grpc.StatusCode.INVALID_ARGUMENT),
        ("stock_forecast", {"prices": np.ones((1, 3), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT),
        ("stock_forecast", {"prices": np.ones((2,), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_grpc_errors_have_matching_status(either_server, model, inputs, code):
    server, _ = either_server
    predictions, _ = grpc_stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(request, timeout=30)
    assert raised.value.code() == code


# --- Versions, load, fuzz --------------------------------------------------------------------------------


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_new_version_hot_swaps_without_failed_requests_and_a_broken_one_is_reported(served):
    server, root = served
    failures, answered, stop = [], [], threading.Event()

    def client_loop():
        for _ in range(2000):  # bounded; the test stops it much sooner
            if stop.is_set():
                return
            code, body = rest(server, "POST", "/v1/models/stock_forecast:predict", {"instances": PRICES})
            (answered if code == 200 else failures).append(code)

    thread = threading.Thread(target=client_loop)
    thread.start()
    staging = root / "stock_forecast" / ".staging"
    shutil.copytree(root / "stock_forecast" / "1", staging)
    staging.rename(root / "stock_forecast" / "2")  # atomic, as apps/pipeline.py exports
    assert wait_for(lambda: rest(server, "GET", "/v1/models/stock_forecast")[1]["model_version_status"][0]["version"] == "2")
    broken = root / "stock_forecast" / "3"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    assert wait_for(lambda: rest(server, "GET", "/v1/models/stock_forecast")[1]["model_version_status"][0]["version"] == "3")
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=60)
    statuses = rest(server, "GET", "/v1/models/stock_forecast")[1]["model_version_status"]
    assert statuses[0]["state"] == "END" and statuses[0]["status"]["error_message"]  # version 3 failed ...
    assert statuses[1] == {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert rest(server, "POST", "/v1/models/stock_forecast:predict", {"instances": PRICES})[0] == 200  # ... 2 serves
    assert not failures and len(answered) > 5
    shutil.rmtree(broken)
    shutil.rmtree(root / "stock_forecast" / "2")
    assert wait_for(lambda: [s["version"] for s in rest(server, "GET", "/v1/models/stock_forecast")[1]["model_version_status"]] == ["1"])


def test_concurrent_clients_get_no_errors(served):
    server, _ = served
    clients, requests_each = 8, 200  # as the issue sizes it: 1,600 requests, bounded

    def client(index):
        latencies = []
        for request in range(requests_each):
            start = time.perf_counter()
            code, body = rest(server, "POST", "/v1/models/sentiment:predict", {"instances": [f"review {index} {request}"]})
            latencies.append(time.perf_counter() - start)
            assert code == 200 and len(body["predictions"]) == 1
        return latencies

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = sorted(sum(pool.map(client, range(clients)), []))
    assert len(latencies) == clients * requests_each
    elapsed = time.perf_counter() - started
    print(f"p50 {1000 * latencies[len(latencies) // 2]:.1f} ms, p99 {1000 * latencies[int(len(latencies) * 0.99)]:.1f} ms, "
          f"{len(latencies) / elapsed:.0f} requests/s")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON_VALUES, model=st.sampled_from(["sentiment", "stock_forecast"]))
def test_fuzzed_rest_bodies_never_get_5xx(either_server, body, model):
    server, _ = either_server
    code, payload = rest(server, "POST", f"/v1/models/{model}:predict", raw=json.dumps(body).encode())
    assert code < 500, payload


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), model=st.sampled_from(["sentiment", "stock_forecast", "x"]))
def test_fuzzed_grpc_requests_never_get_internal_errors(either_server, raw, model):
    server, _ = either_server
    predictions, _ = grpc_stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    try:
        request.inputs["text" if model == "sentiment" else "prices"].ParseFromString(raw)
    except Exception:  # noqa: BLE001 -- bytes that are not a TensorProto: send an empty one
        pass
    try:
        predictions.Predict(request, timeout=30)
    except grpc.RpcError as error:
        assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), error.details()


def test_reload_config_over_grpc(served):
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2
    from tensorflow_serving.config import model_server_config_pb2

    server, root = served
    _, models = grpc_stubs(server)
    full = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(CONFIG.format(sentiment=root / "sentiment", stock=root / "stock_forecast"), full.config)
    request = model_management_pb2.ReloadConfigRequest()
    only_stock = model_server_config_pb2.ModelServerConfig()
    only_stock.model_config_list.config.add(name="stock_forecast", base_path=str(root / "stock_forecast"))
    request.config.CopyFrom(only_stock)
    models.HandleReloadConfigRequest(request, timeout=60)
    assert rest(server, "GET", "/v1/models/sentiment")[0] == 404
    assert rest(server, "POST", "/v1/models/stock_forecast:predict", {"instances": PRICES})[0] == 200
    models.HandleReloadConfigRequest(full, timeout=60)  # both models again, with the label
    assert rest(server, "GET", "/v1/models/sentiment/labels/stable")[0] == 200


def test_server_still_answers_after_the_fuzzing(served):
    server, _ = served
    assert rest(server, "POST", "/v1/models/sentiment:predict", {"instances": ["Still here."]})[0] == 200


def test_a_request_past_the_rest_timeout_gets_504_and_the_server_serves_on(served):
    _, root = served
    manager = ModelManager([Model("sentiment", root / "sentiment")], poll_seconds=0)
    server = ModelServer(manager, grpc_port=0, rest_port=0, timeout_seconds=0.2).start()
    try:
        slow = {"instances": [f"review {index} " + "long " * 60 for index in range(20000)]}  # seconds of work
        started = time.perf_counter()
        status, body = rest(server, "POST", "/v1/models/sentiment:predict", slow)
        assert status == 504 and "Deadline exceeded" in body["error"] and "200 ms" in body["error"], (status, body)
        assert time.perf_counter() - started < 5  # answered at the deadline, not when the work ends
        assert wait_for(lambda: rest(server, "POST", "/v1/models/sentiment:predict", {"instances": ["Fine."]})[0] == 200)
    finally:
        server.stop()
