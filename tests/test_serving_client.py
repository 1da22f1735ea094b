"""The serving client's pure parts, without a server: request bodies, gRPC requests, answers, errors, and
that neither it nor the server loads apps/."""

import io
import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import scipy.io.wavfile
import tensorflow as tf

from serving import client, contracts, formats
from tests.helpers import ROOT


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


def test_rest_body_row_format_for_texts():
    inputs = formats.PARSERS["sentiment"](["A triumph.", "", "¡Qué película! 映画"])
    body = client.rest_body(inputs)
    assert body == {
        "signature_name": "serving_default",
        "instances": [{"text": "A triumph."}, {"text": ""}, {"text": "¡Qué película! 映画"}],
    }


def test_rest_body_row_format_for_prices():
    inputs = formats.PARSERS["stock_forecast"](["1,2,3.5", "4, 5, 6"])
    body = client.rest_body(inputs, signature="other")
    assert body == {"signature_name": "other", "instances": [{"prices": [1.0, 2.0, 3.5]}, {"prices": [4.0, 5.0, 6.0]}]}


def test_sentiment_rest_answer_formats_label_and_probability():
    inputs = formats.PARSERS["sentiment"](["A triumph.", "Dull."])
    answer = {"predictions": [{"probability": 0.9, "label": "positive"}, {"probability": 0.2, "label": "negative"}]}
    outputs = client.parse_rest_response(answer, list(contracts.CONTRACTS["sentiment"]["outputs"]))
    assert outputs["label"].tolist() == [b"positive", b"negative"]
    assert outputs["probability"].dtype == np.float32
    np.testing.assert_allclose(outputs["probability"], [0.9, 0.2])
    lines = formats.FORMATTERS["sentiment"](inputs, outputs).splitlines()
    assert "positive" in lines[0] and "0.900" in lines[0] and "A triumph." in lines[0]
    assert "p(negative)=0.800" in lines[1] and "Dull." in lines[1]  # the label's own probability, 1 - 0.2


def test_stock_rest_answer_formats_forecast_table():
    inputs = formats.PARSERS["stock_forecast"]([",".join(["100"] * 12)])
    row = {"forecast": [101.0] * 5, "lower": [99.0] * 5, "upper": [103.5] * 5}
    outputs = client.parse_rest_response({"predictions": [row]}, list(contracts.CONTRACTS["stock_forecast"]["outputs"]))
    assert {name: value.shape for name, value in outputs.items()} == {name: (1, 5) for name in row}
    text = formats.FORMATTERS["stock_forecast"](inputs, outputs)
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


def test_grpc_request_for_texts():
    inputs = formats.PARSERS["sentiment"](["A triumph.", "美しい"])
    request = client.grpc_request(inputs, "sentiment", version=2)
    assert request.model_spec.name == "sentiment"
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.version.value == 2 and not request.model_spec.version_label
    assert list(request.inputs) == ["text"]
    tensor = request.inputs["text"]
    assert tensor.dtype == tf.string.as_datatype_enum
    assert [dim.size for dim in tensor.tensor_shape.dim] == [2]
    assert tf.make_ndarray(tensor).tolist() == ["A triumph.".encode(), "美しい".encode()]


def test_grpc_request_for_prices_with_label():
    inputs = formats.PARSERS["stock_forecast"](["1,2,3", "4,5,6"])
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


def test_speech_clips_are_read_padded_and_formatted_with_or_without_label_names(tmp_path):
    from data import speech

    speech.write_wav(tmp_path / "long.wav", np.full(1000, 0.5))
    scipy.io.wavfile.write(tmp_path / "short.wav", 8000, np.full((300, 2), 16384, np.int16))  # stereo, 8 kHz
    inputs = formats.PARSERS["speech_keywords"]([str(tmp_path / "long.wav"), str(tmp_path / "short.wav")])
    audio = inputs["audio"]
    assert audio.dtype == np.float32 and audio.shape == (2, 1000)
    assert not audio[1, :200].any() and not audio[1, 800:].any()  # 600 samples at 16 kHz, centred
    np.testing.assert_allclose(audio[1, 250:750], 0.5, atol=0.02)
    with pytest.raises(ValueError, match="Could not read a WAV file"):
        formats.PARSERS["speech_keywords"]([str(tmp_path / "missing.wav")])
    outputs = {"label": np.array([b"yes", b"_silence_"], object), "probabilities": np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])}
    plain = formats.FORMATTERS["speech_keywords"](inputs, outputs).splitlines()
    assert plain == ["clip 1: yes        p=0.700", "clip 2: _silence_  p=0.600"]
    named = formats.format_speech_keywords(inputs, outputs, labels=("yes", "no", "_silence_"))
    assert named.splitlines()[0] == "clip 1: yes        p=0.700   (then no 0.20, _silence_ 0.10)"


def test_client_prints_the_server_answer_for_clips_without_the_label_names(monkeypatch, capsys, tmp_path):
    from data import speech

    speech.write_wav(tmp_path / "clip.wav", np.zeros(1600))

    def answer(request, timeout):
        assert len(json.loads(request.data)["instances"][0]["audio"]) == 1600
        return io.BytesIO(json.dumps({"predictions": [{"label": "no", "probabilities": [0.1, 0.9]}]}).encode())

    monkeypatch.setattr(urllib.request, "urlopen", answer)
    assert client.main(["speech_keywords", str(tmp_path / "clip.wav")]) == 0
    assert capsys.readouterr().out.strip() == "clip 1: no         p=0.900"


def test_serving_modules_and_a_client_run_do_not_import_the_apps():
    script = """
import io, json, sys, urllib.request
import serving.client, serving.server, serving.models, serving.batching, serving.contracts, serving.formats

def answer(request, timeout):
    return io.BytesIO(json.dumps({"predictions": [{"probability": 0.9, "label": "positive"}]}).encode())

urllib.request.urlopen = answer
assert serving.client.main(["sentiment", "A triumph."]) == 0
loaded = sorted(name for name in sys.modules if name == "apps" or name.startswith("apps."))
assert not loaded, loaded
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def test_rest_answers_keep_the_exports_own_output_names():
    """A sentiment model of three classes answers `label` and `probabilities`, not the contract's `probability`."""
    answer = {"predictions": [{"label": "mixed", "probabilities": [0.2, 0.3, 0.5]}]}
    outputs = client.parse_rest_response(answer, list(contracts.CONTRACTS["sentiment"]["outputs"]))
    assert sorted(outputs) == ["label", "probabilities"]
    np.testing.assert_allclose(outputs["probabilities"], [[0.2, 0.3, 0.5]])
    assert "p(mixed)=0.500" in formats.FORMATTERS["sentiment"](formats.text_inputs(["So-so."]), outputs)
