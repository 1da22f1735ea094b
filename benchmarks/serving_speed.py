"""Latency and throughput of the local model server for the sentiment model, with and without batching.

Measured side by side in one run: an in-process call of the same SavedModel signature (the floor),
then the server (`python -m serving`, its own process) over REST and gRPC, one request at a time
(p50/p99 latency) and from concurrent clients (requests/s), once without and once with server-side
batching.

    python -m benchmarks.serving_speed [--export saved_models/sentiment] [--requests 200] [--clients 8]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.batching import PER_MODEL_PARAMETERS

TEXTS = ["A moving, beautifully acted film.", "Dull, overlong and badly written.", "Not bad at all."]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentiles(seconds):
    values = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def rest_call(port, text):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/v1/models/sentiment:predict", json.dumps({"instances": [text]}))
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {body[:200]}")


def grpc_caller(port):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    def call(text):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "sentiment"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array([text.encode()], dtype=object)))
        stub.Predict(request, timeout=30)

    return call


def sequential(call, requests):
    for text in TEXTS * 3:  # warm-up
        call(text)
    seconds = []
    for index in range(requests):
        start = time.perf_counter()
        call(TEXTS[index % len(TEXTS)])
        seconds.append(time.perf_counter() - start)
    return percentiles(seconds)


def concurrent_throughput(call, clients, requests):
    per_client = max(requests // clients, 1)

    def client(index):
        seconds = []
        for request in range(per_client):
            start = time.perf_counter()
            call(f"{TEXTS[request % len(TEXTS)]} {index}")
            seconds.append(time.perf_counter() - start)
        return seconds

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        seconds = sum(pool.map(client, range(clients)), [])
    return {"requests_per_s": len(seconds) / (time.perf_counter() - start), **percentiles(seconds)}


def launch_server(model_name, export, flags=(), timeout_seconds=300):
    """`(process, REST port, gRPC port)` of `python -m serving` in its own process on one model, returned once
    the model's status says AVAILABLE (which sends the model no request)."""
    rest_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving", "--model_name", model_name, "--model_base_path", str(export),
               "--rest_api_port", str(rest_port), "--port", str(grpc_port), "--file_system_poll_wait_seconds", "0",
               *flags]  # fmt: skip
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=5)
            connection.request("GET", f"/v1/models/{model_name}")
            status = json.loads(connection.getresponse().read())
            connection.close()
            if any(entry["state"] == "AVAILABLE" for entry in status.get("model_version_status", [])):
                return process, rest_port, grpc_port
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"The server did not make {model_name} AVAILABLE within {timeout_seconds} s")


def start_server(export, batching, output):
    """The server on the sentiment export; with `batching`, every version batched with the parameters that the
    export writes into a batchable version's folder (so that an export made before it wrote them is batched too)."""
    flags = []
    if batching:
        parameters = output / "batching_params.pbtxt"
        parameters.write_text(PER_MODEL_PARAMETERS)
        flags = ["--enable_batching", "--batching_parameters_file", str(parameters)]
    process, rest_port, grpc_port = launch_server("sentiment", export, flags)
    rest_call(rest_port, "warm-up")
    return process, rest_port, grpc_port


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", default="saved_models/sentiment", help="the model's base path (integer versions)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--output", default="reports/benchmarks")
    arguments = parser.parse_args(argv)
    export = pathlib.Path(arguments.export)
    versions = sorted(int(path.name) for path in export.glob("*") if path.name.isdigit())
    if not versions:
        raise SystemExit(f"No export under {export}. Run `python -m apps.sentiment train` first. Received: no versions")

    signature = tf.saved_model.load(str(export / str(versions[-1]))).signatures["serving_default"]
    results = {"in-process call": sequential(lambda text: signature(text=tf.constant([text])), arguments.requests)}
    output = pathlib.Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    for batching in (False, True):
        process, rest_port, grpc_port = start_server(export, batching, output)
        try:
            label = "batching" if batching else "no batching"
            results[f"REST, {label}"] = sequential(lambda text: rest_call(rest_port, text), arguments.requests)
            results[f"gRPC, {label}"] = sequential(grpc_caller(grpc_port), arguments.requests)
            results[f"REST, {label}, {arguments.clients} clients"] = concurrent_throughput(
                lambda text: rest_call(rest_port, text), arguments.clients, arguments.requests * 2
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    floor = results["in-process call"]["p50_ms"]
    lines = ["| path | p50 ms | p99 ms | p50 / in-process | requests/s |", "|---|---|---|---|---|"]
    for name, values in results.items():
        throughput = f"{values['requests_per_s']:.0f}" if "requests_per_s" in values else "-"
        lines.append(f"| {name} | {values['p50_ms']:.2f} | {values['p99_ms']:.2f} | {values['p50_ms'] / floor:.1f}x | {throughput} |")
    table = "\n".join(lines)
    print(table)
    (output / "serving_speed.json").write_text(json.dumps(results, indent=2))
    (output / "serving_speed.md").write_text(table + f"\n\nExport {export / str(versions[-1])}, {os.cpu_count()} CPU cores.\n")
    return results


if __name__ == "__main__":
    main()
