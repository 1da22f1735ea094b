"""Killing the server under load and starting it again: the client reports the failure in one clear line, and
every model version on disk is served again, one exported while the server was down too. Slow (two server
processes): `make test-slow`."""

import shutil
import signal
import threading
import time

import pytest

from benchmarks.serving_speed import launch_server
from serving import client, formats
from tests.helpers import copy_exports, rest

pytestmark = pytest.mark.slow


class Ports:
    def __init__(self, rest_port):
        self.rest_port = rest_port


def statuses(rest_port):
    return {entry["version"]: entry["state"] for entry in rest(Ports(rest_port), "GET", "/v1/models/sentiment")[1]["model_version_status"]}


def test_a_killed_server_restarts_with_every_version_and_the_client_says_what_failed(trained_app, tmp_path):
    base = copy_exports(trained_app, ["sentiment"], tmp_path)["sentiment"]
    shutil.copytree(base / "1", base / "2")
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "sentiment" base_path: "{base}" model_platform: "tensorflow" '
                      f'model_version_policy {{ all {{}} }} }} }}')  # fmt: skip
    process, rest_port, grpc_port = launch_server(["--model_config_file", str(config)], ["sentiment"])
    answers, failures, stop = [], [], threading.Event()

    def client_loop():
        for _ in range(5000):  # bounded; stopped much sooner
            if stop.is_set():
                return
            try:
                client.predict("sentiment", formats.text_inputs(["A fine film."]), port=rest_port, timeout=5)
                answers.append(time.monotonic())
            except client.ServingError as error:
                failures.append(str(error))
                time.sleep(0.05)

    thread = threading.Thread(target=client_loop)
    thread.start()
    try:
        assert statuses(rest_port) == {"1": "AVAILABLE", "2": "AVAILABLE"}
        deadline = time.monotonic() + 60
        while len(answers) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        while not failures and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.copytree(base / "1", base / "3")  # exported while the server is down
        process, _, _ = launch_server(["--model_config_file", str(config)], ["sentiment"], ports=(rest_port, grpc_port))
        assert statuses(rest_port) == {"1": "AVAILABLE", "2": "AVAILABLE", "3": "AVAILABLE"}
        served_again = len(answers)
        while len(answers) < served_again + 20 and time.monotonic() < deadline + 60:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
        process.terminate()
        process.wait(timeout=30)
    assert failures and all(f"Cannot reach http://127.0.0.1:{rest_port}" in failure for failure in failures), failures[:3]
    assert len(answers) >= served_again + 20, "the client was not answered again after the restart"
