"""Latency and throughput of the local model server, with and without batching.

By default, the sentiment model measured side by side in one run: an in-process call of the same
SavedModel signature (the floor), then the server (`python -m serving`, its own process) over REST and
gRPC, one request at a time (p50/p99 latency) and from concurrent clients (requests/s), once without and
once with server-side batching.

With --all-apps, a mixed load on all four apps served together as docker-compose.yml serves them: every
client sends, round after round, sentiment and stock requests over REST and gRPC, translations (beam search)
of a short, a medium and a long sentence, a 1 s speech clip and a `stream` chain (ten 100 ms chunks carrying
the state); p50/p99 per operation, errors and operations/s, without batching and with per-model batching.

    python -m benchmarks.serving_speed [--export saved_models/sentiment] [--requests 200] [--clients 8]
    python -m benchmarks.serving_speed --all-apps [--export-dir saved_models] [--rounds 20] [--clients 8]
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
import tempfile
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import client
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


def launch_server(model_flags, model_names, flags=(), timeout_seconds=300, ports=None):
    """`(process, REST port, gRPC port)` of `python -m serving` in its own process (`model_flags`: --model_name and
    --model_base_path, or --model_config_file), returned once every one of `model_names` says AVAILABLE (which
    sends the models no request). `ports`: `(REST, gRPC)`, by default two free ones."""
    rest_port, grpc_port = ports or (free_port(), free_port())
    command = [sys.executable, "-m", "serving", *model_flags, "--rest_api_port", str(rest_port), "--port",
               str(grpc_port), "--file_system_poll_wait_seconds", "0", *flags]  # fmt: skip
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_seconds
    waiting = list(model_names)
    while time.monotonic() < deadline and process.poll() is None and waiting:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=5)
            connection.request("GET", f"/v1/models/{waiting[0]}")
            status = json.loads(connection.getresponse().read())
            connection.close()
            if any(entry["state"] == "AVAILABLE" for entry in status.get("model_version_status", [])):
                waiting.pop(0)
                continue
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    if not waiting:
        return process, rest_port, grpc_port
    process.kill()
    raise RuntimeError(f"The server did not make {waiting} AVAILABLE within {timeout_seconds} s")


def start_server(export, batching, output):
    """The server on the sentiment export; with `batching`, every version batched with the parameters that the
    export writes into a batchable version's folder (so that an export made before it wrote them is batched too)."""
    flags = []
    if batching:
        parameters = output / "batching_params.pbtxt"
        parameters.write_text(PER_MODEL_PARAMETERS)
        flags = ["--enable_batching", "--batching_parameters_file", str(parameters)]
    process, rest_port, grpc_port = launch_server(["--model_name", "sentiment", "--model_base_path", str(export)],
                                                  ["sentiment"], flags)  # fmt: skip
    rest_call(rest_port, "warm-up")
    return process, rest_port, grpc_port


# ---------------------------------------------------------------------------------------------------------
# --all-apps: a mixed load on the four apps
# ---------------------------------------------------------------------------------------------------------

APPS = ("sentiment", "stock_forecast", "translation", "speech_keywords")
SENTENCES = {
    "short": "Love one another.",
    "medium": "The children went to the city in the morning.",
    "long": "Where you go, I will go; and where you stay, I will stay: your people shall be my people.",
}
# As docker-compose.yml runs TF Serving: only the exports that carry batching_params.pbtxt are batched.
PER_MODEL_BATCHING = ["--enable_batching", "--enable_per_model_batching_parameters", "--batching_parameters_file",
                      str(pathlib.Path(__file__).resolve().parent.parent / "saved_models" / "batching_parameters.txt")]


def grpc_predict(stub, model_name, inputs, signature="serving_default"):
    """`{output: array}` of one gRPC Predict, built and read by the serving client."""
    request = client.grpc_request(inputs, model_name, signature=signature)
    return client.parse_grpc_response(stub.Predict(request, timeout=60))


def rest_predict(port, model_name, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", f"/v1/models/{model_name}:predict", json.dumps(body))
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {answer[:200]}")


def mixed_operations(rest_port, stub, rng):
    """`{label: operation()}`: what every client of the mixed load sends, one request each (a stream chain: ten)."""
    prices = (100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))).astype("float32")
    clip = rng.uniform(-0.3, 0.3, (1, 16000)).astype("float32")

    def text(value):
        return np.array([value.encode()], dtype=object)

    def stream_chain():
        pending, state = np.zeros((1, 0), np.float32), np.zeros((1, 0), np.float32)
        for chunk in np.split(clip, 10, axis=1):
            outputs = grpc_predict(stub, "speech_keywords", {"audio": chunk, "pending": pending, "state": state}, "stream")
            pending, state = outputs["pending"], outputs["state"]

    operations = {
        "sentiment, REST": lambda: rest_predict(rest_port, "sentiment", {"instances": [TEXTS[0]]}),
        "sentiment, gRPC": lambda: grpc_predict(stub, "sentiment", {"text": text(TEXTS[1])}),
        "stock_forecast, REST (30 days)": lambda: rest_predict(rest_port, "stock_forecast", {"instances": [prices[-30:].tolist()]}),
        "stock_forecast, gRPC (60 days)": lambda: grpc_predict(stub, "stock_forecast", {"prices": prices[None, :]}),
    }
    for length, sentence in SENTENCES.items():
        operations[f"translation, gRPC, {length} ({len(sentence.split())} words)"] = (
            lambda sentence=sentence: grpc_predict(stub, "translation", {"text": text(sentence)}))  # fmt: skip
    operations["speech_keywords, gRPC, 1 s clip"] = lambda: grpc_predict(stub, "speech_keywords", {"audio": clip})
    operations["speech_keywords, gRPC, stream chain (10 x 100 ms)"] = stream_chain
    return operations


def mixed_load(operations, clients, rounds):
    """Every client runs each operation `rounds` times, starting at another one than its neighbour."""
    labels = list(operations)

    def client(index):
        seconds, errors = {label: [] for label in labels}, []
        for _ in range(rounds):
            for offset in range(len(labels)):
                label = labels[(index + offset) % len(labels)]
                start = time.perf_counter()
                try:
                    operations[label]()
                except Exception as error:  # noqa: BLE001 -- counted and reported, the load goes on
                    errors.append(f"{label}: {error}")
                    continue
                seconds[label].append(time.perf_counter() - start)
        return seconds, errors

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    by_operation = {label: sum((seconds[label] for seconds, _ in results), []) for label in labels}
    errors = sum((errors for _, errors in results), [])
    return {
        "operations_per_s": sum(len(values) for values in by_operation.values()) / elapsed,
        "errors": len(errors),
        "first_errors": errors[:5],
        "by_operation": {label: {**percentiles(values), "count": len(values)} for label, values in by_operation.items() if values},
    }


def all_apps(export_dir, clients, rounds, output):
    """The mixed load from one client, then from `clients` at once, each without and with per-model batching;
    writes serving_load.md and .json to `output`. One client shows each operation's own latency on the server;
    `clients` shows it queued behind the others on the machine's cores."""
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        config = pathlib.Path(folder) / "models.config"
        config.write_text("model_config_list {\n" + "".join(
            f'  config {{ name: "{name}" base_path: "{(export_dir / name).resolve()}" model_platform: "tensorflow" }}\n'
            for name in APPS) + "}\n")  # fmt: skip
        for batching in (False, True):
            process, rest_port, grpc_port = launch_server(["--model_config_file", str(config)], APPS,
                                                          PER_MODEL_BATCHING if batching else [])  # fmt: skip
            try:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
                operations = mixed_operations(rest_port, stub, np.random.default_rng(0))
                for operation in operations.values():  # the signatures that warmup does not cover
                    operation()
                for count in sorted({1, clients}):
                    setting = f"{count} client{'s' if count > 1 else ''}, {'per-model batching' if batching else 'no batching'}"
                    results[setting] = mixed_load(operations, count, rounds)
            finally:
                process.terminate()
                process.wait(timeout=30)
    settings = sorted(results, key=lambda setting: int(setting.split()[0]))
    lines = ["| operation | " + " | ".join(f"{setting}: p50 ms | p99 ms" for setting in settings) + " |",
             "|---" * (1 + 2 * len(settings)) + "|"]  # fmt: skip
    for label in results[settings[0]]["by_operation"]:
        cells = [f"{results[setting]['by_operation'][label]['p50_ms']:.1f} | {results[setting]['by_operation'][label]['p99_ms']:.1f}"
                 for setting in settings]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| operations/s, errors | " + " | ".join(
        f"{results[setting]['operations_per_s']:.0f} | {results[setting]['errors']} errors" for setting in settings) + " |")
    table = "\n".join(lines)
    print(table)
    (output / "serving_load.json").write_text(json.dumps(results, indent=2))
    (output / "serving_load.md").write_text(
        table + f"\n\n{rounds} rounds per client, exports under {export_dir}, {os.cpu_count()} CPU cores.\n"
        "Reproduce: `python -m benchmarks.serving_speed --all-apps`.\n")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", default="saved_models/sentiment", help="the model's base path (integer versions)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--output", default="reports/benchmarks")
    parser.add_argument("--all-apps", action="store_true", help="the mixed load on all four apps instead")
    parser.add_argument("--export-dir", default="saved_models", help="--all-apps: holds <app>/<version>/ of each app")
    parser.add_argument("--rounds", type=int, default=20, help="--all-apps: times each client sends each operation")
    arguments = parser.parse_args(argv)
    if arguments.all_apps:
        output = pathlib.Path(arguments.output)
        output.mkdir(parents=True, exist_ok=True)
        return all_apps(pathlib.Path(arguments.export_dir), arguments.clients, arguments.rounds, output)
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
