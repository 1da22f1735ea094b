"""The serving client's pure parts, without a server: request bodies, gRPC requests, answers, errors."""

import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from serving import client, contracts


@pytest.fixture(scope="module")
def sentiment_app():
    return contracts.load_app("sentiment")


@pytest.fixture(scope="module")
def stock_app():
    return contracts.load_app("stock_forecast")


def test_rest_url_default_version_and_label():
    assert client.rest_url("127.0.0.1", 8501, "sentiment") == "http://127.0.0.1:8501/v1/models/sentiment:predict"
    assert client.rest_url("host", 9000, "sentiment", version=3) == (
        "http://host:9000/v1/models/sentiment/versions/3:predict"
    )
    assert client.rest_url("host", 8501, "stock_forecast", label="canary") == (
        "http://host:8501/v1/models/stock_forecast/labels/canary:predict"
    )
    with pytest.raises(ValueError, match="version or a label"):
        client.rest_url("host", 8501, "sentiment", version=1, label="stable")


def test_rest_body_row_format_for_texts(sentiment_app):
    inputs = sentiment_app.parse_inputs(["A triumph.", "", "¡Qué película! 映画"])
    body = client.rest_body(inputs)
    assert body == {
        "signature_name": "serving_default",
        "instances": [{"text": "A triumph."}, {"text": ""}, {"text": "¡Qué película! 映画"}],
    }


def test_rest_body_row_format_for_prices(stock_app):
    inputs = stock_app.parse_inputs(["1,2,3.5", "4, 5, 6"])
    body = client.rest_body(inputs, signature="other")
    assert body == {"signature_name": "other", "instances": [{"prices": [1.0, 2.0, 3.5]}, {"prices": [4.0, 5.0, 6.0]}]}


def test_sentiment_rest_answer_formats_label_and_probability(sentiment_app):
    inputs = sentiment_app.parse_inputs(["A triumph.", "Dull."])
    answer = {"predictions": [{"probability": 0.9, "label": "positive"}, {"probability": 0.2, "label": "negative"}]}
    outputs = client.parse_rest_response(answer, list(contracts.CONTRACTS["sentiment"]["outputs"]))
    assert outputs["label"].tolist() == [b"positive", b"negative"]
    assert outputs["probability"].dtype == np.float32
    np.testing.assert_allclose(outputs["probability"], [0.9, 0.2])
    lines = sentiment_app.format_outputs(inputs, outputs).splitlines()
    assert "positive" in lines[0] and "0.900" in lines[0] and "A triumph." in lines[0]
    assert "negative" in lines[1] and "0.200" in lines[1] and "Dull." in lines[1]


def test_stock_rest_answer_formats_forecast_table(stock_app):
    inputs = stock_app.parse_inputs([",".join(["100"] * 12)])
    row = {"forecast": [101.0] * 5, "lower": [99.0] * 5, "upper": [103.5] * 5}
    outputs = client.parse_rest_response({"predictions": [row]}, list(contracts.CONTRACTS["stock_forecast"]["outputs"]))
    assert {name: value.shape for name, value in outputs.items()} == {name: (1, 5) for name in row}
    text = stock_app.format_outputs(inputs, outputs)
    assert "Window of 12 prices" in text and "80% interval" in text and "[99.00, 103.50]" in text
    assert text.count("101.00") == 5


def test_rest_answer_with_one_output_as_bare_values():
    outputs = client.parse_rest_response({"predictions": [0.25, 0.75]}, ["probability"])
    np.testing.assert_allclose(outputs["probability"], [0.25, 0.75])


def test_rest_error_body_raises_with_the_server_message():
    with pytest.raises(client.ServingError, match="prices must be positive"):
        client.parse_rest_response({"error": "assertion failed: [prices must be positive]"}, ["forecast"])
    with pytest.raises(client.ServingError, match="no 'predictions'"):
        client.parse_rest_response({"outputs": []}, ["forecast"])


def test_grpc_request_for_texts(sentiment_app):
    inputs = sentiment_app.parse_inputs(["A triumph.", "美しい"])
    request = client.grpc_request(inputs, "sentiment", version=2)
    assert request.model_spec.name == "sentiment"
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.version.value == 2 and not request.model_spec.version_label
    assert list(request.inputs) == ["text"]
    tensor = request.inputs["text"]
    assert tensor.dtype == tf.string.as_datatype_enum
    assert [dim.size for dim in tensor.tensor_shape.dim] == [2]
    assert tf.make_ndarray(tensor).tolist() == ["A triumph.".encode(), "美しい".encode()]


def test_grpc_request_for_prices_with_label(stock_app):
    inputs = stock_app.parse_inputs(["1,2,3", "4,5,6"])
    request = client.grpc_request(inputs, "prices_model", label="canary", signature="serving_default")
    assert request.model_spec.name == "prices_model" and request.model_spec.version_label == "canary"
    assert not request.model_spec.HasField("version")
    tensor = request.inputs["prices"]
    assert tensor.dtype == tf.float32.as_datatype_enum
    np.testing.assert_array_equal(tf.make_ndarray(tensor), [[1, 2, 3], [4, 5, 6]])


def test_grpc_response_parses_to_arrays():
    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    response.outputs["probability"].CopyFrom(tf.make_tensor_proto(np.array([0.9, 0.1], np.float32)))
    response.outputs["label"].CopyFrom(tf.make_tensor_proto(np.array([b"positive", b"negative"], object)))
    outputs = client.parse_grpc_response(response)
    np.testing.assert_allclose(outputs["probability"], [0.9, 0.1], rtol=1e-6)
    assert outputs["label"].tolist() == [b"positive", b"negative"]


def http_error(url, code, body):
    return urllib.error.HTTPError(url, code, "error", {}, io.BytesIO(body.encode()))


def test_server_error_body_exits_non_zero_with_the_message(monkeypatch, capsys):
    message = "assertion failed: [prices must hold at least 10 days per row]"

    def answer_400(request, timeout):
        assert request.full_url == "http://127.0.0.1:8501/v1/models/stock_forecast/versions/4:predict"
        assert json.loads(request.data)["instances"] == [{"prices": [1.0, 2.0, 3.0]}]
        raise http_error(request.full_url, 400, json.dumps({"error": message}))

    monkeypatch.setattr(urllib.request, "urlopen", answer_400)
    assert client.main(["stock_forecast", "1,2,3", "--version", "4"]) == 1
    error = capsys.readouterr().err
    assert "server error: HTTP 400" in error and message in error


def test_unreachable_server_exits_non_zero_with_a_clear_message(monkeypatch, capsys):
    def refuse(request, timeout):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    assert client.main(["sentiment", "A triumph.", "--port", "9000"]) == 1
    error = capsys.readouterr().err
    assert "Cannot reach http://127.0.0.1:9000/v1/models/sentiment:predict" in error and "refused" in error


def test_grpc_status_exits_non_zero_with_code_and_details(monkeypatch, capsys):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class NotFound(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.NOT_FOUND

        def details(self):
            return "Servable not found for request: Specific(sentiment, 7)"

    class Stub:
        def __init__(self, channel):
            pass

        def Predict(self, request, timeout):
            assert request.model_spec.version.value == 7
            raise NotFound()

    monkeypatch.setattr(prediction_service_pb2_grpc, "PredictionServiceStub", Stub)
    assert client.main(["sentiment", "A triumph.", "--grpc", "--version", "7"]) == 1
    error = capsys.readouterr().err
    assert "gRPC NOT_FOUND from 127.0.0.1:8500" in error and "Specific(sentiment, 7)" in error


def test_bad_input_exits_non_zero_before_sending(capsys):
    assert client.main(["stock_forecast", "1,2,x"]) == 2
    assert "comma-separated prices" in capsys.readouterr().err
    assert client.main(["sentiment"]) == 2
