"""The local server's Prometheus page: TF Serving's metric names and labels, parsed with prometheus_client's own
parser, counting exactly the requests sent and timing them within the clients' own clocks."""

import http.client
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2

from serving.models import Model, ModelManager
from serving.monitoring import METRICS_PATH, REQUEST_COUNT, REQUEST_LATENCY
from serving.server import ModelServer
from tests.helpers import copy_exports, grpc_stubs, rest


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, trained_app):
    exports = copy_exports(trained_app, ("sentiment", "stock_forecast"), tmp_path_factory.mktemp("monitored"))
    manager = ModelManager([Model(name, base) for name, base in exports.items()], poll_seconds=0)
    server = ModelServer(manager, grpc_port=0, rest_port=0, metrics_path=METRICS_PATH).start()
    yield server
    server.stop()


def scrape(server):
    """`(content type, text, {family name: family})` of the metrics page."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    connection.request("GET", METRICS_PATH)
    response = connection.getresponse()
    text = response.read().decode("utf-8")
    connection.close()
    assert response.status == 200, text
    return response.getheader("Content-Type"), text, {family.name: family for family in text_string_to_metric_families(text)}


def grpc_prices(stub, prices):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "stock_forecast"
    request.inputs["prices"].CopyFrom(tf.make_tensor_proto(np.asarray(prices, np.float32)))
    return stub.Predict(request, timeout=30)


def test_the_page_counts_and_times_each_predict_request_with_tf_servings_names(monitored):
    stub, _ = grpc_stubs(monitored)
    good_prices = [[100.0 + day for day in range(20)]]
    client_seconds = {"REST": 0.0, "GRPC": 0.0}
    started = time.perf_counter()
    for text in ("Good.", "Bad.", "A fine film."):
        assert rest(monitored, "POST", "/v1/models/sentiment:predict", {"instances": [text]})[0] == 200
    assert rest(monitored, "POST", "/v1/models/sentiment:predict", {"instances": [1, 2]})[0] == 400
    assert rest(monitored, "POST", "/v1/models/unknown:predict", {"instances": ["a"]})[0] == 404  # not counted
    assert rest(monitored, "GET", "/v1/models/sentiment")[0] == 200  # a status request is no predict request
    client_seconds["REST"] = time.perf_counter() - started
    started = time.perf_counter()
    grpc_prices(stub, good_prices)
    grpc_prices(stub, good_prices)
    with pytest.raises(grpc.RpcError) as raised:
        grpc_prices(stub, [[100.0] * 3])  # too short a window: the model's own check
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    client_seconds["GRPC"] = time.perf_counter() - started

    content_type, text, families = scrape(monitored)
    assert content_type.startswith("text/plain")
    count = families[REQUEST_COUNT]
    assert count.type == "counter"
    assert {sample.name for sample in count.samples} == {REQUEST_COUNT + "_total"}  # as the parser reads TF Serving's too
    assert {(sample.labels["model_name"], sample.labels["status"]): sample.value for sample in count.samples} == {
        ("sentiment", "OK"): 3, ("sentiment", "INVALID_ARGUMENT"): 1,
        ("stock_forecast", "OK"): 2, ("stock_forecast", "INVALID_ARGUMENT"): 1,
    }  # fmt: skip
    latency = families[REQUEST_LATENCY]
    assert latency.type == "histogram"
    by_labels = {}
    for sample in latency.samples:
        if sample.name.endswith("_created"):
            continue
        key = (sample.labels["model_name"], sample.labels["API"], sample.labels["entrypoint"])
        by_labels.setdefault(key, []).append(sample)
    assert sorted(by_labels) == [("sentiment", "Predict", "REST"), ("stock_forecast", "Predict", "GRPC")]
    for (model_name, _, entrypoint), samples in by_labels.items():
        values = {sample.name[len(REQUEST_LATENCY):]: sample.value for sample in samples if "le" not in sample.labels}
        buckets = [(float(sample.labels["le"]), sample.value) for sample in samples if "le" in sample.labels]
        assert values["_count"] == (4 if model_name == "sentiment" else 3)
        counts = [value for _, value in sorted(buckets)]
        assert counts == sorted(counts) and counts[-1] == values["_count"]  # cumulative, +Inf holds them all
        # Microseconds, and no more than the clients waited in all.
        assert 0 < values["_sum"] <= 1e6 * client_seconds[entrypoint], (values, client_seconds)
        bounds = sorted(bound for bound, _ in buckets)  # TF Serving's: 10 us * 1.8^i, 33 of them, then +Inf
        np.testing.assert_allclose(bounds[:-1], [10 * 1.8**index for index in range(33)], rtol=1e-6)
        assert bounds[-1] == float("inf")
    assert rest(monitored, "GET", "/v1/models/sentiment")[0] == 200 and "unknown" not in text
