"""Server-side batching of the local server against TF Serving's rules (batching_session.cc): which exports get
per-model batching parameters, what a batched model refuses, and that a batched answer is the unbatched call's."""

import concurrent.futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from serving import client, contracts
from serving.batching import PER_MODEL_FILENAME, PER_MODEL_PARAMETERS, Batcher, BatchingConfig, parse_parameters, unbatchable_reasons
from serving.models import LoadOptions, Model, ModelManager, ServingError, read_signature_defs
from serving.server import ModelServer
from tests.helpers import copy_exports, grpc_stubs, rest

APPS = sorted(contracts.CONTRACTS)


def serve(models, batching=None):
    """A started server on free ports over `models`, `[serving.models.Model]`."""
    return ModelServer(ModelManager(models, poll_seconds=0, options=LoadOptions(batching)), grpc_port=0, rest_port=0).start()


@pytest.fixture(scope="module")
def exports(tmp_path_factory, trained_app):
    """`{app: base path}`: each app's quick export (version 1, as the pipeline wrote it) under a fresh folder."""
    return copy_exports(trained_app, APPS, tmp_path_factory.mktemp("batching"))


# --- Which exports TF Serving may batch --------------------------------------------------------------------


def signature_def(inputs, outputs):
    """A SignatureDef with float inputs and outputs of the given shapes (None: unknown rank)."""
    definition = meta_graph_pb2.SignatureDef()
    for tensors, shapes in ((definition.inputs, inputs), (definition.outputs, outputs)):
        for name, shape in shapes.items():
            info = tensors[name]
            if shape is None:
                info.tensor_shape.unknown_rank = True
            for size in shape or ():
                info.tensor_shape.dim.add(size=size)
    return definition


@pytest.mark.parametrize("inputs, outputs, reason", [
    ({"text": [-1]}, {"label": [-1], "probabilities": [-1, 2]}, None),
    ({"prices": [-1, -1]}, {"forecast": [-1, 5]}, "input 'prices'"),
    ({}, {"labels": [-1]}, "no inputs"),
    ({"text": [-1]}, {"attention": [-1, -1, -1]}, "output 'attention'"),
    ({"text": None}, {"label": [-1]}, "unknown rank"),
    ({"value": []}, {"label": [-1]}, "input 'value' of 'serving_default' is a scalar"),
])  # fmt: skip
def test_unbatchable_reasons_name_what_tf_serving_would_refuse_or_pad(inputs, outputs, reason):
    init_op = signature_def({}, {"init": None})  # every SavedModel has it; no request runs it
    reasons = unbatchable_reasons({"serving_default": signature_def(inputs, outputs), "__saved_model_init_op": init_op})
    if reason is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and reason in reasons[0], reasons


def test_the_export_writes_batching_params_only_where_every_signature_batches_safely(exports):
    batched = {name: (base / "1" / PER_MODEL_FILENAME).exists() for name, base in exports.items()}
    # The quick sentiment model has two classes: one signature, string text [batch] in, [batch] out.
    assert batched == {"sentiment": True, "stock_forecast": False, "translation": False, "speech_keywords": False}
    assert (exports["sentiment"] / "1" / PER_MODEL_FILENAME).read_text() == PER_MODEL_PARAMETERS
    parameters = parse_parameters(PER_MODEL_PARAMETERS)
    assert parameters.max_batch_size.value > 1 and not parameters.pad_variable_length_inputs
    reasons = {name: " ".join(unbatchable_reasons(read_signature_defs(base / "1"))) for name, base in exports.items()}
    assert "input 'prices'" in reasons["stock_forecast"]
    assert "'labels' has no inputs" in reasons["speech_keywords"] and "input 'audio'" in reasons["speech_keywords"]
    assert "input 'state' of 'stream'" in reasons["speech_keywords"]
    assert "of 'translate_with_attention'" in reasons["translation"]


# --- A batched model's answers are the unbatched calls' ---------------------------------------------------


def mixed_requests(name, rng):
    """`[(signature name, inputs)]`: requests to app `name` whose widths differ, as concurrent clients send them."""
    if name == "sentiment":
        texts = ["Good.", "", "A long, slow and in the end deeply moving film about " + "memory " * 40,
                 "¡Qué película! 映画", "Dull, overlong and badly written."]  # fmt: skip
        return [("serving_default", {"text": np.array(texts[index : index + rows], dtype=object)})
                for index, rows in ((0, 1), (1, 2), (2, 1), (3, 2), (0, 3), (4, 1))]  # fmt: skip
    if name == "stock_forecast":
        return [("serving_default", {"prices": (100 * np.exp(np.cumsum(rng.normal(0, 0.01, (rows, days)), axis=1))
                                                ).astype("float32")})
                for rows, days in ((1, 10), (2, 30), (1, 60), (1, 10), (3, 15))]  # fmt: skip
    if name == "translation":
        texts = ["Love one another.", "The children went to the city in the morning.", "", "My brother loves his wife."]
        return [("serving_default", {"text": np.array(texts[index : index + 1], dtype=object)}) for index in range(4)]
    clips = [rng.uniform(-0.3, 0.3, (rows, samples)).astype("float32") for rows, samples in ((1, 8000), (2, 16000), (1, 20000))]
    chunk = rng.uniform(-0.3, 0.3, (1, 4000)).astype("float32")
    first_call = {"audio": chunk, "pending": np.zeros((1, 0), np.float32), "state": np.zeros((1, 0), np.float32)}
    return [("serving_default", {"audio": clip}) for clip in clips] + [("stream", first_call), ("labels", {})]


def predict_over_grpc(stub, model, signature, inputs):
    request = client.grpc_request(inputs, model, signature=signature)
    return client.parse_grpc_response(stub.Predict(request, timeout=120))


def assert_same_outputs(actual, expected, context):
    assert sorted(actual) == sorted(expected), context
    for name, value in expected.items():
        if value.dtype.kind in "fc":
            np.testing.assert_allclose(actual[name], value, rtol=1e-4, atol=1e-5, err_msg=f"{context}: {name}")
        else:
            np.testing.assert_array_equal(actual[name], value, err_msg=f"{context}: {name}")


def test_concurrent_mixed_length_requests_to_every_app_equal_unbatched_calls(exports):
    """Every app served as docker-compose.yml serves it (per-model batching): concurrent requests of mixed
    widths each get the answer of the export's own signature called alone."""
    rng = np.random.default_rng(0)
    requests = [(name, signature, inputs) for name in APPS for signature, inputs in mixed_requests(name, rng)]
    server = serve([Model(name, base) for name, base in exports.items()], BatchingConfig(per_model=True))
    batch_sizes = []
    try:
        versions = {name: server.manager.model(name).resolve() for name in APPS}
        assert {name: version.batcher is not None for name, version in versions.items()} == {
            "sentiment": True, "stock_forecast": False, "translation": False, "speech_keywords": False}
        batcher = versions["sentiment"].batcher
        batcher.timeout_seconds = 0.5  # long enough that the concurrent requests surely share batches
        execute = batcher.execute
        batcher.execute = lambda function, tasks: (batch_sizes.append(len(tasks)), execute(function, tasks))
        stub, _ = grpc_stubs(server)
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(lambda request: predict_over_grpc(stub, *request), requests))
    finally:
        server.stop()
    assert max(batch_sizes) > 1, f"sentiment's requests never shared a batch: {batch_sizes}"
    signatures = {name: tf.saved_model.load(str(base / "1")).signatures for name, base in exports.items()}
    for (name, signature, inputs), answer in zip(requests, answers):
        expected = signatures[name][signature](**{key: tf.constant(value) for key, value in inputs.items()})
        assert_same_outputs(answer, {key: value.numpy() for key, value in expected.items()}, f"{name} {signature}")


# --- What TF Serving's batching does with requests that do not fit, and why those models get no file ---------


def batched_calls(batcher, signature, requests):
    """Each request's outputs or exception, all sent at once to `batcher` under one key."""
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(batcher.run, "serving_default", signature, {"prices": tf.constant(prices)})
                   for prices in requests]  # fmt: skip
    return [future.exception() or future.result() for future in futures]


def test_mixed_widths_fail_the_whole_batch_and_padding_changes_the_forecast(exports):
    signature = tf.saved_model.load(str(exports["stock_forecast"] / "1")).signatures["serving_default"]
    long_window = np.linspace(100, 120, 20, dtype=np.float32)[None, :]  # rising: a padded end is far from the last
    short_window = long_window[:, -15:]
    waiting = "max_batch_size { value: 64 } batch_timeout_micros { value: 300000 }"
    results = batched_calls(Batcher(parse_parameters(waiting)), signature, [long_window, short_window])
    for result in results:  # TF Serving refuses the batch: both requests fail, neither is rerun alone
        assert isinstance(result, ServingError) and result.status == "FAILED_PRECONDITION", result
        assert "different shapes and padding is turned off" in result.message
    padding = waiting + " pad_variable_length_inputs: true"
    long_answer, short_answer = batched_calls(Batcher(parse_parameters(padding)), signature, [long_window, short_window])
    alone = signature(prices=tf.constant(short_window))
    np.testing.assert_allclose(long_answer["forecast"], signature(prices=tf.constant(long_window))["forecast"], rtol=1e-5)
    # Padding appends the window's first price after its last one, so the forecast starts from a wrong price.
    assert not np.allclose(short_answer["forecast"], alone["forecast"].numpy(), rtol=1e-3)


def test_same_widths_share_a_batch_each_gets_its_rows_and_one_bad_request_fails_them_all(exports):
    signature = tf.saved_model.load(str(exports["stock_forecast"] / "1")).signatures["serving_default"]
    rng = np.random.default_rng(2)
    requests = [(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (rows, 20)), axis=1))).astype("float32") for rows in (1, 3, 2)]
    batcher = Batcher(parse_parameters("max_batch_size { value: 6 } batch_timeout_micros { value: 300000 }"))
    for prices, answer in zip(requests, batched_calls(batcher, signature, requests)):
        assert_same_outputs(answer, {key: value.numpy() for key, value in signature(prices=tf.constant(prices)).items()},
                            "stock_forecast")
    with pytest.raises(ServingError, match="larger than maximum input batch size 6"):
        batcher.run("serving_default", signature, {"prices": tf.constant(np.ones((7, 20), np.float32))})
    bad = np.full((1, 20), -5.0, np.float32)
    for result in batched_calls(batcher, signature, [requests[0], bad]):
        assert isinstance(result, tf.errors.InvalidArgumentError) and "positive" in result.message


# --- The input-less labels signature -------------------------------------------------------------------------


def labels_over_grpc(server):
    predictions, _ = grpc_stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "speech_keywords"
    request.model_spec.signature_name = "labels"
    return predictions.Predict(request, timeout=30)


def test_an_input_less_signature_is_answered_unbatched_and_refused_in_tf_servings_words_batched(exports):
    speech = exports["speech_keywords"]
    expected = tf.saved_model.load(str(speech / "1")).signatures["labels"]()["labels"].numpy().tolist()
    # As docker-compose.yml serves it: per-model batching, and the speech export has no batching_params.pbtxt.
    per_model = serve([Model("speech_keywords", speech)], BatchingConfig(per_model=True))
    try:
        status, body = rest(per_model, "POST", "/v1/models/speech_keywords:predict", {"signature_name": "labels", "inputs": {}})
        assert status == 200 and [label.encode() for label in body["outputs"]["labels"]] == expected
        assert tf.make_ndarray(labels_over_grpc(per_model).outputs["labels"]).tolist() == expected
    finally:
        per_model.stop()
    # Batching every model, TF Serving counts a request's rows from its inputs and answers INVALID_ARGUMENT
    # without them; the local server said 500 (a StopIteration) instead.
    batched = serve([Model("speech_keywords", speech)], BatchingConfig())
    try:
        status, body = rest(batched, "POST", "/v1/models/speech_keywords:predict", {"signature_name": "labels", "inputs": {}})
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
