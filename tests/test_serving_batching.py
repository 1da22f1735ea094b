"""Server-side batching of the local server against TF Serving's rules (batching_session.cc): what it batches,
what it refuses, and that a batched answer is the unbatched call's."""

import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from serving.batching import Batcher
from serving.models import Model, ModelManager
from serving.server import ModelServer
from tests.helpers import grpc_stubs, rest


def serve(models, **keyword_arguments):
    """A started server on free ports over `models`, `[serving.models.Model]`."""
    return ModelServer(ModelManager(models, poll_seconds=0), grpc_port=0, rest_port=0, **keyword_arguments).start()


@pytest.fixture(scope="module")
def speech_export(tmp_path_factory, trained_app):
    """The quick speech export (whose `labels` signature has no inputs) alone under a fresh base path."""
    _, trained_path, _ = trained_app("speech_keywords")
    base = tmp_path_factory.mktemp("speech") / "speech_keywords"
    shutil.copytree(trained_path / "saved_models" / "speech_keywords" / "1", base / "1")
    return base


def labels_over_grpc(server):
    predictions, _ = grpc_stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "speech_keywords"
    request.model_spec.signature_name = "labels"
    return predictions.Predict(request, timeout=30)


def test_an_input_less_signature_is_refused_with_tf_servings_words_when_batched(speech_export):
    expected = tf.saved_model.load(str(speech_export / "1")).signatures["labels"]()["labels"].numpy()
    unbatched = serve([Model("speech_keywords", speech_export)])
    try:
        status, body = rest(unbatched, "POST", "/v1/models/speech_keywords:predict",
                            {"signature_name": "labels", "inputs": {}})
        assert status == 200 and [label.encode() for label in body["outputs"]] == expected.tolist()
        assert tf.make_ndarray(labels_over_grpc(unbatched).outputs["labels"]).tolist() == expected.tolist()
    finally:
        unbatched.stop()
    # TF Serving's batching counts a request's rows from its inputs and answers INVALID_ARGUMENT without
    # them; the local server said 500 (a StopIteration) instead.
    batched = serve([Model("speech_keywords", speech_export)], batcher=Batcher())
    try:
        status, body = rest(batched, "POST", "/v1/models/speech_keywords:predict",
                            {"signature_name": "labels", "inputs": {}})
        assert status == 400 and "at least one input tensor" in body["error"], body
        with pytest.raises(grpc.RpcError) as raised:
            labels_over_grpc(batched)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "at least one input tensor" in raised.value.details()
        audio = np.zeros((1, 16000), np.float32).tolist()
        status, body = rest(batched, "POST", "/v1/models/speech_keywords:predict", {"inputs": {"audio": audio}})
        assert status == 200 and len(body["outputs"]["label"]) == 1  # the signature with inputs still batches
    finally:
        batched.stop()
