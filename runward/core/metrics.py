"""Prometheus metrics of the pipeline processes (prometheus_client): one place for every
metric name the stages and the API export, so dashboards and alerts have one reference.

A stage exports what it consumed, published and dead-lettered, its consumer lag and how long
a record took to handle, on `RUNWARD_METRICS_PORT` (0 = off); so does the OTLP receiver, its
requests by route and status. The API serves its request counters on its own `/metrics` route.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Handling a record is a decode, a pure domain call and a few produces: milliseconds, with a
# tail when the store or the broker is slow.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

STAGE_RECORDS_IN = Counter(
    "runward_stage_records_in_total", "records the stage consumed, by input topic", ["stage", "topic"]
)
STAGE_RECORDS_OUT = Counter(
    "runward_stage_records_out_total", "records the stage published, by output topic", ["stage", "topic"]
)
STAGE_DEAD_LETTERS = Counter(
    "runward_stage_dead_letters_total", "records the stage sent to the dead-letter topic", ["stage"]
)
STAGE_LAG = Gauge(
    "runward_stage_consumer_lag",
    "records behind the high watermark, by input topic and partition",
    ["stage", "topic", "partition"],
)
STAGE_LATENCY = Histogram(
    "runward_stage_processing_seconds",
    "time from a batch of records reaching the stage handler to its outputs being sent",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)

API_REQUESTS = Counter(
    "runward_api_requests_total", "API requests, by method, route template and status", ["method", "route", "status"]
)
API_LATENCY = Histogram(
    "runward_api_request_seconds", "API request duration, by route template", ["route"], buckets=LATENCY_BUCKETS
)

INTAKE_REQUESTS = Counter(
    "runward_intake_requests_total",
    "requests to the OTLP receiver and webhooks, by route and status",
    ["route", "status"],
)


class StageMetrics:
    """The metrics of one stage, labelled with its name (what the stage harness calls)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def received(self, topic: str, records: int = 1) -> None:
        STAGE_RECORDS_IN.labels(self.stage, topic).inc(records)

    def published(self, topic: str) -> None:
        STAGE_RECORDS_OUT.labels(self.stage, topic).inc()

    def dead_lettered(self) -> None:
        STAGE_DEAD_LETTERS.labels(self.stage).inc()

    def lag(self, topic: str, partition: int, records: int) -> None:
        STAGE_LAG.labels(self.stage, topic, str(partition)).set(records)

    @contextmanager
    def handling(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            STAGE_LATENCY.labels(self.stage).observe(time.perf_counter() - started)


def serve_metrics(port: int, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY) -> bool:
    """Serve /metrics on host:port in a daemon thread; port 0 means metrics are off."""
    if port == 0:
        return False
    start_http_server(port, addr=host, registry=registry)
    return True
