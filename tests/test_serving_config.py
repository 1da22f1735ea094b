"""The TF Serving configs in saved_models/ parse as the server reads them, name real apps, and each listed
app's export has exactly the serving contract of serving/contracts.py."""

import importlib.util
import os
import re

import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from apps.registry import load_app
from serving import batching, contracts, monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_CONFIG = os.path.join(ROOT, "saved_models", "models.config")
BATCHING_PARAMETERS = os.path.join(ROOT, "saved_models", "batching_parameters.txt")
MONITORING_CONFIG = os.path.join(ROOT, "saved_models", "monitoring.config")
DOCKER_COMPOSE = os.path.join(ROOT, "docker-compose.yml")


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
    """The server-wide file sets the batch threads that every batched model shares; the queue parameters come
    from each batchable export's own batching_params.pbtxt (--enable_per_model_batching_parameters)."""
    with open(BATCHING_PARAMETERS) as file:
        common = batching.parse_parameters(file.read(), BATCHING_PARAMETERS)
    assert common.num_batch_threads.value > 0
    per_model = batching.parse_parameters(batching.PER_MODEL_PARAMETERS)
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches"):
        assert per_model.HasField(name), f"{name} is not set"
        assert getattr(per_model, name).value > 0, name
    assert not per_model.pad_variable_length_inputs, "padding would hide a request of the wrong width"
    with pytest.raises(ValueError, match="max_batch_sise"):
        batching.parse_parameters("max_batch_sise { value: 8 }")  # TF Serving would refuse to load the model


def test_monitoring_config_serves_prometheus_at_tf_servings_path(tmp_path):
    assert monitoring.metrics_path_from_file(MONITORING_CONFIG) == monitoring.METRICS_PATH
    misspelled = tmp_path / "monitoring.config"
    misspelled.write_text("prometheus_config { enabled: true }")
    with pytest.raises(ValueError, match="enabled"):
        monitoring.metrics_path_from_file(misspelled)


def test_docker_compose_flags_name_the_files_in_saved_models():
    """Every `--*_file=/models/<file>` of the server's command is a file of saved_models/ (mounted at /models),
    and the flags that decide batching and monitoring are there."""
    with open(DOCKER_COMPOSE) as file:
        flags = re.findall(r"^\s*- (--[a-z_]+)(?:=(\S+))?", file.read(), flags=re.MULTILINE)
    values = dict(flags)
    for flag in ("--model_config_file", "--batching_parameters_file", "--monitoring_config_file"):
        assert values[flag].startswith("/models/"), (flag, values.get(flag))
        assert os.path.isfile(os.path.join(ROOT, "saved_models", values[flag][len("/models/"):])), flag
    assert values["--enable_batching"] == "true" and values["--enable_per_model_batching_parameters"] == "true"


def test_the_serving_image_is_the_tensorflow_that_exports():
    """The rule: serve with a TF Serving at least as new as the TensorFlow that exported (an older server may not
    know an op or attribute of the export). The image tag is pinned to requirements.txt's tensorflow."""
    with open(os.path.join(ROOT, "requirements.txt")) as file:
        (tensorflow_version,) = re.findall(r"^tensorflow==(\S+)", file.read(), flags=re.MULTILINE)
    with open(DOCKER_COMPOSE) as file:
        images = re.findall(r"^\s*image:\s*(\S+)", file.read(), flags=re.MULTILINE)
    assert images == [f"tensorflow/serving:{tensorflow_version}"], (images, tensorflow_version)
    assert tf.__version__ == tensorflow_version, "the exports here come from requirements.txt's tensorflow"


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
