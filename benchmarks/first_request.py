"""The first request after a model loads, with and without TF Serving's warmup (the export's
assets.extra/tf_serving_warmup_requests, replayed at load).

For each app, the local server starts in a fresh process on the export's latest version, once with
--enable_model_warmup=false and once with true, `--repeats` times each, alternating. Once the version is
AVAILABLE, the same REST request is sent `--requests` times. Reported: the time from start to AVAILABLE, the
first request's latency, and the median of the others (the steady state).

    python -m benchmarks.first_request [--export-dir saved_models] [--apps translation speech_keywords] [--repeats 3]

The export must hold a warmup file: exports written by `python -m apps.<app> train` (or `export`) do.
"""

import argparse
import http.client
import json
import os
import pathlib
import time

import numpy as np

from benchmarks.serving_speed import launch_server
from serving.warmup import WARMUP_FILE

# One request per app, other than the export's warmup examples (which come from the test split).
REQUESTS = {
    "sentiment": {"instances": ["A moving, beautifully acted film."]},
    "stock_forecast": {"instances": [[100 + day / 10 for day in range(30)]]},
    "translation": {"instances": ["The children went to the city in the morning."]},
    "speech_keywords": {"inputs": {"audio": (0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).round(4)[None].tolist()}},
}


def timed_request(port, model_name, body):
    """Seconds for one REST predict; a non-200 answer raises."""
    data = json.dumps(body)
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", f"/v1/models/{model_name}:predict", data)
    response = connection.getresponse()
    answer = response.read()
    seconds = time.perf_counter() - start
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status} from {model_name}: {answer[:200]}")
    return seconds


def measure(model_name, export, warmup, requests):
    """`{"load_s", "first_ms", "steady_ms"}` of one server start."""
    start = time.perf_counter()
    process, rest_port, _ = launch_server(["--model_name", model_name, "--model_base_path", str(export)], [model_name],
                                          [f"--enable_model_warmup={str(warmup).lower()}"])  # fmt: skip
    try:
        load = time.perf_counter() - start
        seconds = [timed_request(rest_port, model_name, REQUESTS[model_name]) for _ in range(requests)]
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {"load_s": load, "first_ms": 1000 * seconds[0], "steady_ms": 1000 * float(np.median(seconds[1:]))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", default="saved_models", help="holds <app>/<version>/ folders")
    parser.add_argument("--apps", nargs="+", default=["translation", "speech_keywords"], choices=sorted(REQUESTS))
    parser.add_argument("--repeats", type=int, default=3, help="server starts per app and setting")
    parser.add_argument("--requests", type=int, default=6, help="requests per start: the first, then the steady state")
    parser.add_argument("--output", default="reports/benchmarks")
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1 or arguments.requests < 2:
        raise SystemExit(f"Needs --repeats >= 1 and --requests >= 2. Received: {arguments.repeats}, {arguments.requests}")
    results = {}
    for name in arguments.apps:
        export = pathlib.Path(arguments.export_dir) / name
        versions = sorted(int(path.name) for path in export.glob("*") if path.name.isdigit())
        if not versions or not (export / str(versions[-1]) / WARMUP_FILE).exists():
            raise SystemExit(f"{export} needs a latest version with {WARMUP_FILE}: run `python -m apps.{name} export` "
                             f"(or train). Received: versions {versions}")  # fmt: skip
        runs = {False: [], True: []}
        for _ in range(arguments.repeats):
            for warmup in (False, True):
                runs[warmup].append(measure(name, export, warmup, arguments.requests))
        for warmup, measured in runs.items():
            results[f"{name}, warmup {'on' if warmup else 'off'}"] = {
                key: float(np.median([run[key] for run in measured])) for key in measured[0]
            }
    lines = ["| app, warmup | start to AVAILABLE s | first request ms | later requests ms (median) |", "|---|---|---|---|"]
    for label, values in results.items():
        lines.append(f"| {label} | {values['load_s']:.1f} | {values['first_ms']:.0f} | {values['steady_ms']:.0f} |")
    table = "\n".join(lines)
    print(table)
    output = pathlib.Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "first_request.json").write_text(json.dumps(results, indent=2))
    (output / "first_request.md").write_text(
        table + f"\n\nMedians of {arguments.repeats} server starts each, {os.cpu_count()} CPU cores.\n"
    )
    return results


if __name__ == "__main__":
    main()
