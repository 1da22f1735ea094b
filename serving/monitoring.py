"""TF Serving's request metrics in Prometheus' text format, written by prometheus_client, at the path where TF
Serving serves them with --monitoring_config_file (saved_models/monitoring.config).

The names and labels are TF Serving's (its metric names with "/" written ":"), so one dashboard reads either
server:
    :tensorflow:serving:request_count{model_name, status}             counter: predict requests by outcome
    :tensorflow:serving:request_latency{model_name, API, entrypoint}  histogram: wall time in microseconds
`status` is the canonical code's name ("OK", "INVALID_ARGUMENT", ...), `API` "Predict", `entrypoint` "REST"
or "GRPC". Only models of the server's config are counted, so a client naming random models cannot grow
the page without bound.

prometheus_client writes a counter's series with the suffix `_total` (TF Serving writes the bare name) and
adds `_created` series; its parser reads both pages into the same families.
"""

import pathlib

from google.protobuf import text_format
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from serving.protos import monitoring_config_class

METRICS_PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# TF Serving's buckets (Buckets::Exponential(10, 1.8, 33)): 10 us to about 20 minutes.
LATENCY_BUCKETS_MICROSECONDS = tuple(10 * 1.8**index for index in range(33))


def metrics_path_from_file(path):
    """The path to serve metrics at, from a `--monitoring_config_file`; None where Prometheus is not enabled."""
    try:
        config = text_format.Parse(pathlib.Path(path).read_text(), monitoring_config_class()())
    except (OSError, text_format.ParseError) as error:
        raise ValueError(f"Cannot read the monitoring config file {path}. Received: {error}") from None
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or METRICS_PATH


class ServingMetrics:
    """Counts and latencies of predict requests, in a registry of their own (one per server)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.request_count = Counter(REQUEST_COUNT, "The total number of requests.", ["model_name", "status"],
                                     registry=self.registry)  # fmt: skip
        self.request_latency = Histogram(
            REQUEST_LATENCY, "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=LATENCY_BUCKETS_MICROSECONDS, registry=self.registry,
        )  # fmt: skip

    def record(self, model_name, status, seconds, entrypoint, api="Predict"):
        """One request to `model_name` that ended with canonical `status` after `seconds`."""
        self.request_count.labels(model_name=model_name, status=status).inc()
        self.request_latency.labels(model_name=model_name, API=api, entrypoint=entrypoint).observe(seconds * 1e6)

    def exposition(self):
        """`(content type, bytes)` of the page TF Serving serves at METRICS_PATH, in Prometheus' text format."""
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)
