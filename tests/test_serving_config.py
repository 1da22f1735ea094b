"""The TF Serving configs in saved_models/ parse as the server reads them, name real apps, and each listed
app's export has exactly the serving contract of serving/contracts.py."""

import importlib.util
import os

import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from apps.registry import load_app
from serving import contracts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_CONFIG = os.path.join(ROOT, "saved_models", "models.config")
BATCHING_PARAMETERS = os.path.join(ROOT, "saved_models", "batching_parameters.txt")


def batching_parameters_class():
    """`tensorflow.serving.BatchingParameters`. The pip package tensorflow-serving-api does not ship
    session_bundle_config_pb2, so without it the message is rebuilt with the server's field names and
    numbers (tensorflow_serving/servables/tensorflow/session_bundle_config.proto); unknown or misspelled
    fields then fail to parse, as they would in the server."""
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="session_bundle_config_batching.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )  # fmt: skip
    message = file.message_type.add(name="BatchingParameters")
    Field = descriptor_pb2.FieldDescriptorProto
    for name, number, wrapper in (
        ("max_batch_size", 1, "Int64Value"),
        ("batch_timeout_micros", 2, "Int64Value"),
        ("max_enqueued_batches", 3, "Int64Value"),
        ("num_batch_threads", 4, "Int64Value"),
        ("thread_pool_name", 5, "StringValue"),
    ):
        message.field.add(name=name, number=number, type=Field.TYPE_MESSAGE, label=Field.LABEL_OPTIONAL,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6, type=Field.TYPE_INT64, label=Field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=Field.TYPE_BOOL, label=Field.LABEL_OPTIONAL)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def served_models():
    with open(MODELS_CONFIG) as file:
        config = text_format.Parse(file.read(), model_server_config_pb2.ModelServerConfig())
    return list(config.model_config_list.config)


def test_models_config_lists_every_contract_app_under_models():
    models = served_models()
    names = [model.name for model in models]
    assert len(names) == len(set(names)), names
    assert sorted(names) == sorted(contracts.CONTRACTS)
    for model in models:
        assert importlib.util.find_spec(f"apps.{model.name}") is not None, f"no apps/{model.name}.py"
        assert load_app(model.name).name == model.name
        assert model.base_path == f"/models/{model.name}"
        assert model.model_platform == "tensorflow"
        assert not model.HasField("model_version_policy"), "the default policy (latest) is the one documented"


def test_batching_parameters_parse_and_are_sane():
    with open(BATCHING_PARAMETERS) as file:
        parameters = text_format.Parse(file.read(), batching_parameters_class()())
    for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        assert parameters.HasField(name), f"{name} is not set"
        assert getattr(parameters, name).value > 0, name
    assert not parameters.pad_variable_length_inputs, "padding would change stock_forecast's last price"


@pytest.mark.parametrize("name", [model.name for model in served_models()])
def test_export_has_exactly_the_contract(name, trained_app):
    _, tmp_path, _ = trained_app(name)
    version_dir = tmp_path / "saved_models" / name / "1"
    signature = tf.saved_model.load(str(version_dir)).signatures[contracts.SIGNATURE]
    _, keyword_inputs = signature.structured_input_signature
    contract = contracts.CONTRACTS[name]
    assert {key: spec.dtype for key, spec in keyword_inputs.items()} == contract["inputs"]
    assert {key: spec.dtype for key, spec in signature.structured_outputs.items()} == contract["outputs"]
    for spec in keyword_inputs.values():
        assert spec.shape[0] is None, f"{name}: the batch dimension must be free for TF Serving's batching"
