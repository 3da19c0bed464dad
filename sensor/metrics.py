"""Sensor counters: a snapshot dict, the Prometheus text format, and a tiny HTTP endpoint
(/metrics for Prometheus, /metrics.json for people and tests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Labels = tuple[tuple[str, str], ...]

HELP: dict[str, str] = {
    "runward_sensor_ready": "1 once the BPF programs are attached and the sensor is publishing",
    "runward_sensor_events_total": "events published to the raw topic, by kind",
    "runward_sensor_dedup_folded_total": "identical events folded by the dedup window, by kind and stage",
    "runward_sensor_perf_lost_samples_total": "samples the perf ring buffer dropped (reported by the kernel)",
    "runward_sensor_kernel_emitted_total": "samples the BPF programs emitted",
    "runward_sensor_kernel_output_failed_total": "samples the BPF programs could not emit (buffer full)",
    "runward_sensor_kernel_state_full_total": "events dropped because the per-cgroup state map was full",
    "runward_sensor_decode_errors_total": "samples that did not decode",
    "runward_sensor_unattributed_total": "events published without a Deployment",
    "runward_sensor_producer_queue_full_total": "events dropped because the producer queue was full",
    "runward_sensor_producer_delivered_total": "events the broker acknowledged",
    "runward_sensor_producer_delivery_failed_total": "events the producer gave up on",
    "runward_sensor_watched_cgroups": "cgroup subtrees the in-kernel filter watches",
    "runward_sensor_tracked_cgroups": "watched cgroups with in-kernel state",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def render_prometheus(values: Mapping[str, Mapping[Labels, float]]) -> str:
    lines = []
    for name in sorted(values):
        kind = "counter" if name.endswith("_total") else "gauge"
        if name in HELP:
            lines.append(f"# HELP {name} {HELP[name]}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in sorted(values[name].items()):
            number = int(value) if float(value).is_integer() else value
            lines.append(f"{name}{_fmt_labels(labels)} {number}")
    return "\n".join(lines) + "\n"


class Metrics:
    """Thread-safe name+labels -> value store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values.setdefault(name, {})
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values.setdefault(name, {})[key] = value

    def snapshot(self) -> dict[str, dict[str, float]]:
        """JSON-friendly: {"name": {"kind=exec": 3, "": 1}}."""
        with self._lock:
            return {
                name: {",".join(f"{k}={v}" for k, v in labels): value for labels, value in series.items()}
                for name, series in self._values.items()
            }

    def prometheus(self) -> str:
        with self._lock:
            copy = {name: dict(series) for name, series in self._values.items()}
        return render_prometheus(copy)


def serve(metrics: Metrics, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve the metrics in a daemon thread; the caller shuts the server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body: bytes
            if self.path == "/metrics":
                body, ctype = metrics.prometheus().encode(), "text/plain; version=0.0.4"
            elif self.path == "/metrics.json":
                body, ctype = json.dumps(metrics.snapshot(), sort_keys=True).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="sensor-metrics", daemon=True)
    thread.start()
    return server
