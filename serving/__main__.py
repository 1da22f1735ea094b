"""`python -m serving`: the local model server, with `tensorflow_model_server`'s flag names.

    python -m serving --model_config_file=saved_models/models.config        # every app
    python -m serving --model_name=sentiment --model_base_path=saved_models/sentiment
"""

import argparse
import os
import signal
import threading

from serving.batching import BatchingConfig
from serving.models import LoadOptions, Model, ModelManager, models_from_config_file
from serving.monitoring import metrics_path_from_file
from serving.server import ModelServer


def boolean(text):
    """A flag value as tensorflow_model_server reads it: true or false."""
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false. Received: {text!r}")
    return text.lower() in ("true", "1")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--model_config_file", help="a model_config_list text proto (saved_models/models.config)")
    parser.add_argument("--model_name", help="serve one model: its name ...")
    parser.add_argument("--model_base_path", help="... and its folder of integer versions")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new and removed versions (0: only at start)")
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=30000)
    parser.add_argument("--max_body_bytes", type=int, default=16 << 20, help="largest accepted request")
    parser.add_argument("--enable_batching", action="store_true", help="batch concurrent requests server-side")
    parser.add_argument("--batching_parameters_file",
                        help="TF Serving's batching parameters for every model (default: TF Serving's, 1000 rows, no wait)")
    parser.add_argument("--enable_per_model_batching_parameters", action="store_true",
                        help="batch only the versions whose folder holds batching_params.pbtxt, with its parameters")
    parser.add_argument("--enable_model_warmup", type=boolean, default=True,
                        help="replay each version's assets.extra/tf_serving_warmup_requests before serving it (default true)")
    parser.add_argument("--monitoring_config_file",
                        help="a MonitoringConfig text proto; with prometheus_config enabled, REST serves metrics at its path")
    parser.add_argument("--verbose", action="store_true", help="log every REST request")
    arguments = parser.parse_args(argv)
    if bool(arguments.model_config_file) == bool(arguments.model_name):
        parser.error("give either --model_config_file or --model_name with --model_base_path")
    if arguments.model_name and not arguments.model_base_path:
        parser.error("--model_name needs --model_base_path")
    return arguments


def main(argv=None):
    arguments = parse_arguments(argv)
    if arguments.model_config_file:
        models = models_from_config_file(arguments.model_config_file)
    else:
        models = [Model(arguments.model_name, os.path.abspath(arguments.model_base_path))]
    batching = None
    if arguments.enable_batching:
        batching = BatchingConfig.from_flags(arguments.batching_parameters_file, arguments.enable_per_model_batching_parameters)
    manager = ModelManager(models, poll_seconds=arguments.file_system_poll_wait_seconds, options=LoadOptions(batching, arguments.enable_model_warmup))
    server = ModelServer(
        manager,
        host=arguments.host,
        grpc_port=arguments.port,
        rest_port=arguments.rest_api_port,
        max_body_bytes=arguments.max_body_bytes,
        timeout_seconds=arguments.rest_api_timeout_in_ms / 1000,
        verbose=arguments.verbose,
        metrics_path=metrics_path_from_file(arguments.monitoring_config_file) if arguments.monitoring_config_file else None,
    ).start()
    for model in manager.models.values():
        batched = {number: version.batcher is not None for number, version in model.available().items()}
        print(f"{model.name}: {model.statuses()} from {model.base_path}; batched: {batched}", flush=True)
    print(f"Serving gRPC on {arguments.host}:{server.grpc_port}, REST on {arguments.host}:{server.rest_port}", flush=True)
    stopped = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
