"""Every export checked by TensorFlow's own saved_model_cli from a virtual environment of its own that holds only
`tensorflow` (at requirements.txt's version) and what it depends on, none of this project's code or packages:
`show --all` lists the contract's signatures, and `run` on an example input gives the local server's answer.
Slow (the environment is built once into .cache/, then a TensorFlow start per command): `make test-slow`."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from serving import contracts
from serving.models import Model, ModelManager
from serving.server import ModelServer
from tests.helpers import copy_exports, grpc_stubs

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXTS = ["A moving, beautifully acted film.", "", "The children went to the city in the morning."]


def example_inputs(name, folder):
    """`(saved_model_cli input flags, {input: array})` of one example request to app `name`."""
    if name in ("sentiment", "translation"):
        return ["--input_exprs", f"text={TEXTS!r}"], {"text": np.array(TEXTS, dtype=object)}
    if name == "stock_forecast":
        values = {"prices": np.array([[100 + np.sin(day / 3) for day in range(30)]] * 2, np.float32)}
    else:
        rng = np.random.default_rng(0)
        values = {"audio": rng.uniform(-0.3, 0.3, (2, 16000)).astype(np.float32)}
    (key, value), = values.items()
    np.save(folder / f"{key}.npy", value)
    return ["--inputs", f"{key}={folder / f'{key}.npy'}"], values


def pinned_tensorflow():
    """requirements.txt's `tensorflow==X` line."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines if re.match(r"tensorflow==", line)]
    assert len(pins) == 1, f"requirements.txt should pin tensorflow once. Received: {pins}"
    return pins[0]


@pytest.fixture(scope="module")
def tensorflow_only():
    """The saved_model_cli of a virtual environment with only the pinned tensorflow installed (built once under
    .cache/, from pip's cache where it has the wheels)."""
    pin = pinned_tensorflow()
    environment = ROOT / ".cache" / f"{pin.replace('==', '-')}-only"
    command = environment / "bin" / "saved_model_cli"
    if not command.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(environment)], check=True, timeout=300)
        installed = subprocess.run([str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet", pin],
                                   capture_output=True, text=True, timeout=1200)  # fmt: skip
        assert installed.returncode == 0, f"pip install {pin} failed: {installed.stderr[-2000:]}"
    listed = subprocess.run([str(environment / "bin" / "python"), "-m", "pip", "list", "--format", "freeze"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    ours = [name for name in ("grpcio-tools", "tensorflow-serving-api", "prometheus-client", "arch", "scikit-learn")
            if re.search(rf"^{name}==", listed, flags=re.MULTILINE | re.IGNORECASE)]  # fmt: skip
    assert not ours, f"the tensorflow-only environment holds packages of the project's: {ours}"
    return str(command)


def saved_model_cli(command, arguments, folder):
    """saved_model_cli's output, run outside the project with nothing of ours on the path."""
    result = subprocess.run(
        [command, *arguments], capture_output=True, text=True, timeout=600, cwd=folder,
        env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("name", sorted(contracts.CONTRACTS))
def test_saved_model_cli_lists_the_contract_and_runs_to_the_servers_answer(name, trained_app, tensorflow_only, tmp_path):
    export = copy_exports(trained_app, [name], tmp_path / "models")[name]
    shown = saved_model_cli(tensorflow_only, ["show", "--dir", str(export / "1"), "--all"], tmp_path)
    block = shown.split(f"signature_def['{contracts.SIGNATURE}']:")[1].split("signature_def[")[0].split("The MetaGraph")[0]
    for kind in ("inputs", "outputs"):
        listed = re.findall(rf"{kind}\['(\w+)'\] tensor_info:\s+dtype: (DT_\w+)", block)
        expected = {key: types_pb2.DataType.Name(dtype.as_datatype_enum) for key, dtype in contracts.CONTRACTS[name][kind].items()}
        assert dict(listed) == expected, block

    flags, inputs = example_inputs(name, tmp_path)
    outdir = tmp_path / "outputs"
    saved_model_cli(tensorflow_only, ["run", "--dir", str(export / "1"), "--tag_set", "serve", "--signature_def", contracts.SIGNATURE,
                     *flags, "--outdir", str(outdir)], tmp_path)  # fmt: skip
    server = ModelServer(ModelManager([Model(name, export)], poll_seconds=0), grpc_port=0, rest_port=0).start()
    try:
        stub, _ = grpc_stubs(server)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=contracts.CONTRACTS[name]["inputs"][key]))
        answer = {key: tf.make_ndarray(tensor) for key, tensor in stub.Predict(request, timeout=120).outputs.items()}
    finally:
        server.stop()
    assert sorted(answer) == sorted(path.stem for path in outdir.glob("*.npy"))
    for key, value in answer.items():
        expected = np.load(outdir / f"{key}.npy", allow_pickle=True)
        if value.dtype.kind in "fc":
            np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            assert value.tolist() == [item if isinstance(item, bytes) else item.encode() for item in expected.tolist()], key
