"""Sensor counters: a snapshot dict for people and tests, exported through prometheus_client
(/metrics for Prometheus, /metrics.json for people and tests).

Most values are totals the kernel or the pipeline already keeps (the BPF stats map, the dedup
folds), so the sensor sets them rather than incrementing: a custom collector hands them to
prometheus_client, which does the exposition. The BPF programs' own run time comes from
/proc/self/fdinfo of their file descriptors (the kernel counts it when
`kernel.bpf_stats_enabled=1`).
"""

from __future__ import annotations

import ctypes
import functools
import json
import re
import struct
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
    "runward_sensor_producer_errors_total": "errors the producer reported (broker unreachable, ...)",
    "runward_sensor_watched_cgroups": "cgroup subtrees the in-kernel filter watches",
    "runward_sensor_tracked_cgroups": "watched cgroups with in-kernel state",
    "runward_sensor_program_run_seconds_total": "time in each BPF program (needs kernel.bpf_stats_enabled=1)",
    "runward_sensor_program_runs_total": "times each BPF program ran (kernel.bpf_stats_enabled=1)",
}

SELF_FDINFO = Path("/proc/self/fdinfo")
_SYS_BPF = 321  # x86_64, the only architecture the sensor supports (sensor/build.py)
_BPF_OBJ_GET_INFO_BY_FD = 15
_PROG_INFO_NAME = slice(64, 80)  # struct bpf_prog_info.name[BPF_OBJ_NAME_LEN] (UAPI, stable)
_FDINFO_FIELD = re.compile(r"^(prog_id|prog_tag|run_time_ns|run_cnt):\s*(\S+)$", re.MULTILINE)


class Metrics:
    """Thread-safe name+labels -> value store, collected by its own prometheus_client registry
    (one per sensor, so several can live in one process, as in tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

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

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: one family per name, a sample per label set."""
        with self._lock:
            copy = {name: dict(series) for name, series in self._values.items()}
        for name in sorted(copy):
            series = copy[name]
            label_names = sorted({k for labels in series for k, _ in labels})
            family: CounterMetricFamily | GaugeMetricFamily
            if name.endswith("_total"):
                family = CounterMetricFamily(name, HELP.get(name, name), labels=label_names)
            else:
                family = GaugeMetricFamily(name, HELP.get(name, name), labels=label_names)
            for labels, value in sorted(series.items()):
                given = dict(labels)
                family.add_metric([given.get(k, "") for k in label_names], value)
            yield family

    def prometheus(self) -> str:
        return generate_latest(self.registry).decode()

    def record_programs(self, programs: Iterable[dict[str, str]]) -> None:
        """Run time and run count of the sensor's BPF programs, from `bpf_program_stats()`."""
        for prog in programs:
            labels = {"program": prog.get("name") or f"id:{prog['prog_id']}"}
            self.set("runward_sensor_program_run_seconds_total", int(prog.get("run_time_ns", 0)) / 1e9, **labels)
            self.set("runward_sensor_program_runs_total", int(prog.get("run_cnt", 0)), **labels)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def bpf_program_name(fd: int) -> str | None:
    """The program's name (`rw_exec`, ...) from the bpf(2) syscall; None when it cannot say."""
    info = ctypes.create_string_buffer(256)  # larger than the kernel's struct: its tail stays zero
    attr = ctypes.create_string_buffer(struct.pack("IIQ", fd, len(info), ctypes.addressof(info)))
    if _libc().syscall(_SYS_BPF, _BPF_OBJ_GET_INFO_BY_FD, attr, 16) != 0:
        return None
    return info.raw[_PROG_INFO_NAME].split(b"\x00", 1)[0].decode(errors="replace") or None


def _program_fields(fdinfo: Path, fds: Iterable[str]) -> dict[str, dict[str, str]]:
    """fd -> prog_id, prog_tag, run_time_ns and run_cnt, for each of these fds that is a program."""
    found: dict[str, dict[str, str]] = {}
    for fd in fds:
        try:
            text = (fdinfo / fd).read_text()
        except OSError:  # the fd closed between listing and reading
            continue
        fields = dict(_FDINFO_FIELD.findall(text))
        if "prog_id" in fields and "run_cnt" in fields:
            found[fd] = fields
    return found


def _listed_fds(fdinfo: Path) -> list[str] | None:
    try:
        return [entry.name for entry in fdinfo.iterdir()]
    except OSError:
        return None


def bpf_program_stats(fdinfo: Path = SELF_FDINFO) -> list[dict[str, str]]:
    """prog_id, prog_tag, run_time_ns and run_cnt (and the name, for this process's own fds) of
    every BPF program this process holds open; labelled by name, a series survives a restart."""
    fds = _listed_fds(fdinfo)
    if fds is None:
        return []
    programs: dict[str, dict[str, str]] = {}
    for fd, fields in _program_fields(fdinfo, fds).items():
        if fdinfo == SELF_FDINFO and fd.isdigit():
            name = bpf_program_name(int(fd))
            if name:
                fields["name"] = name
        programs[fields["prog_id"]] = fields  # a program held by two fds counts once
    return list(programs.values())


class ProgramStats:
    """bpf_program_stats() for a process whose programs are loaded once and kept: the program
    fds are found on the first read that finds any, and their names asked once. Listing and
    reading every fd's fdinfo each second was most of an idle sensor's CPU (py-spy)."""

    def __init__(self, fdinfo: Path = SELF_FDINFO) -> None:
        self._fdinfo = fdinfo
        self._fds: list[str] | None = None
        self._names: dict[tuple[str, str], str | None] = {}

    def read(self) -> list[dict[str, str]]:
        fds = self._fds if self._fds is not None else _listed_fds(self._fdinfo)
        if fds is None:
            return []
        found = _program_fields(self._fdinfo, fds)
        if self._fds is None and found:
            self._fds = sorted(found)
        programs: dict[str, dict[str, str]] = {}
        for fd, fields in found.items():
            if self._fdinfo == SELF_FDINFO and fd.isdigit():
                key = (fd, fields["prog_id"])  # a reused fd number is another program
                if key not in self._names:
                    self._names[key] = bpf_program_name(int(fd))
                name = self._names[key]
                if name:
                    fields["name"] = name
            programs[fields["prog_id"]] = fields
        return list(programs.values())


def serve(metrics: Metrics, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve the metrics in a daemon thread; the caller shuts the server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body: bytes
            if self.path == "/metrics":
                body, ctype = generate_latest(metrics.registry), CONTENT_TYPE_LATEST
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
