"""What several test modules share: the apps' output folders, runs in fresh Python processes, and requests to a
local model server."""

import http.client
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUR_PACKAGES = ("apps", "data", "layers", "serving")
# A fail-fast path for unreachable online data must answer well below tensorflow_datasets' minutes of retries.
FAIL_FAST_SECONDS = 5.0


def folders(tmp_path):
    return [
        "--export-dir", str(tmp_path / "saved_models"),
        "--reports-dir", str(tmp_path / "reports"),
        "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip


def nothing_written(tmp_path):
    """True when none of the apps' output folders under `tmp_path` (see `folders`) exists."""
    return not any((tmp_path / name).exists() for name in ("saved_models", "reports", "runs"))


def run_app(name, arguments, environment=None, **kwargs):
    return run_python(["-m", f"apps.{name}", *arguments], environment, **kwargs)


def run_python(arguments, environment=None, **kwargs):
    """A `python ARGUMENTS` process in the project root with our code on its path, its output in one pipe."""
    environment = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", **(environment or {})}
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
    )  # fmt: skip


def run_without_our_code(script, cwd):
    """Runs `script` in a fresh Python where none of this project can be imported (as TF Serving would load an
    export) and returns the JSON it printed last. The run fails first if any of our packages is importable."""
    check = (
        "import importlib.util\n"
        f"importable = [name for name in {OUR_PACKAGES!r} if importlib.util.find_spec(name)]\n"
        "assert not importable, f'our packages are importable: {importable}'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check + script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}, cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def rest(server, method, path, body=None, raw=None):
    """`(HTTP status, decoded JSON)` of one request to a `serving.server.ModelServer`'s REST port."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = json.loads(response.read().decode())
    connection.close()
    return response.status, payload


def grpc_stubs(server):
    """`(PredictionService stub, ModelService stub)` on a `serving.server.ModelServer`'s gRPC port."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)


def copy_exports(trained_app, names, root):
    """`{name: base path}`: version 1 of each app's quick export (the `trained_app` fixture's) copied to
    `root/<name>/1`, so that a test may add and remove versions without touching the shared training."""
    bases = {}
    for name in names:
        _, trained_path, _ = trained_app(name)
        shutil.copytree(trained_path / "saved_models" / name / "1", root / name / "1")
        bases[name] = root / name
    return bases
