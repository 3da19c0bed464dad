"""The sensor process: kernel samples -> pipeline -> Kafka, plus the periodic work
(syscall sets, watch list, cgroup clean-up, counters). One thread does all of it, so the
pipeline needs no locks; only the metrics endpoint runs beside it."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from sensor import metrics as metrics_mod
from sensor.attribution.base import CachingResolver, CompositeResolver, Resolver
from sensor.attribution.cgroupfs import CgroupIndex, cgroup2_root, cgroup_id
from sensor.attribution.local import LOCAL_CGROUP_DIR, LocalResolver, Registry, registry_path
from sensor.dedup import Deduper
from sensor.kernel import KernelProbes
from sensor.metrics import Metrics
from sensor.pipeline import Emitted, Pipeline
from sensor.publisher import KafkaPublisher
from sensor.syscalls import bitmap_names
from sensor.wire import WireError, decode

log = logging.getLogger(__name__)


@dataclass
class SensorConfig:
    bootstrap: str
    home: Path
    node: str = field(default_factory=lambda: os.environ.get("NODE_NAME") or socket.gethostname())
    kubernetes: bool = False
    dedup_window_s: float = 1.0
    syscall_interval_s: float = 1.0
    dns_ports: tuple[int, ...] = (53,)
    extra_watch: tuple[Path, ...] = ()
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    socket_read_write: bool = True
    gc_interval_s: float = 5.0


def own_cgroup(root: Path, proc_cgroup: Path = Path("/proc/self/cgroup")) -> Path | None:
    for line in proc_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            relative = line[3:].strip().lstrip("/")
            return root / relative if relative else None
    return None


class Sensor:
    def __init__(
        self,
        config: SensorConfig,
        probes: KernelProbes,
        resolver: CachingResolver,
        publisher: KafkaPublisher,
        metrics: Metrics,
        cgroup_root: Path,
    ) -> None:
        self.config = config
        self.probes = probes
        self.resolver = resolver
        self.publisher = publisher
        self.metrics = metrics
        self.cgroup_root = cgroup_root
        self.index = CgroupIndex(cgroup_root)
        self.pipeline = Pipeline(
            config.node,
            resolver,
            Deduper(config.dedup_window_s),
            wall_offset_ns=time.time_ns() - time.monotonic_ns(),
        )
        self._server: ThreadingHTTPServer | None = None
        self._last_syscalls = 0.0
        self._last_gc = 0.0
        self._metrics_written = ""
        self._programs = metrics_mod.ProgramStats()
        self.watched_paths: list[Path] = []

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        try:
            # Watched before any `runward run`, so a workload's first exec is never missed.
            (self.cgroup_root / LOCAL_CGROUP_DIR).mkdir(exist_ok=True)
        except OSError as exc:  # read-only host cgroupfs in a DaemonSet: no local workloads there
            log.info("local workloads disabled: %s", exc)
        self.probes.set_dns_ports(self.config.dns_ports)
        self.probes.set_socket_read_write(self.config.socket_read_write)
        self.probes.set_dedup_window(self.config.dedup_window_s)
        self.refresh_watch()
        self.probes.open_events(self._on_sample, self._on_lost)
        if self.config.metrics_port is not None:
            self._server = metrics_mod.serve(self.metrics, self.config.metrics_port, self.config.metrics_host)
        self.metrics.set("runward_sensor_ready", 1)

    def refresh_watch(self) -> None:
        paths = [p for p in [*self.resolver.watch_paths(), *self.config.extra_watch] if p.is_dir()]
        ids = []
        for path in paths:
            try:
                ids.append(cgroup_id(path))
            except OSError:
                continue
        mine = own_cgroup(self.cgroup_root)
        exclude = [cgroup_id(mine)] if mine is not None and mine.is_dir() else []
        if self.probes.set_watched(ids, exclude):
            log.info("watching %s", ", ".join(map(str, paths)) or "nothing")
        self.watched_paths = paths
        self.metrics.set("runward_sensor_watched_cgroups", len(ids))

    # ------------------------------------------------------------------ kernel callbacks
    def _publish(self, emitted: Emitted) -> None:
        if self.publisher.publish(emitted.key, emitted.event):
            self.metrics.inc("runward_sensor_events_total", kind=emitted.event.detail.kind)
        else:
            self.pipeline.note_dropped(emitted.cgroup_id)

    def _on_sample(self, cpu: int, data: bytes) -> None:
        # Runs inside pylibbpf's poll: an exception escaping here would abort the poll.
        try:
            emitted = self.pipeline.handle(decode(data))
        except WireError as exc:
            self.metrics.inc("runward_sensor_decode_errors_total")
            log.debug("undecodable sample: %s", exc)
            return
        except Exception:
            self.metrics.inc("runward_sensor_decode_errors_total")
            log.exception("sample processing failed")
            return
        if emitted is not None:
            self._publish(emitted)

    def _on_lost(self, cpu: int, count: int) -> None:
        self.metrics.inc("runward_sensor_perf_lost_samples_total", count)

    # ------------------------------------------------------------------ periodic work
    def read_syscall_sets(self) -> dict[int, bytes]:
        bitmaps = self.probes.syscall_bitmaps()
        now_ns = time.monotonic_ns()
        for cg, bitmap in bitmaps.items():
            emitted = self.pipeline.syscalls(cg, bitmap_names(bitmap), now_ns)
            if emitted is not None:
                self._publish(emitted)
        return bitmaps

    def collect_garbage(self, tracked: dict[int, bytes]) -> None:
        """Drop kernel and pipeline state of cgroups that no longer exist."""
        for cg in tracked:
            if not self.index.exists(cg, max_age_s=self.config.gc_interval_s):
                self.probes.forget_cgroup(cg)
                self.pipeline.forget(cg)
                self.resolver.forget(cg)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_syscalls < self.config.syscall_interval_s:
            return
        self._last_syscalls = now
        self.pipeline.wall_offset_ns = time.time_ns() - time.monotonic_ns()
        tracked = self.read_syscall_sets()
        self.refresh_watch()
        if force or now - self._last_gc >= self.config.gc_interval_s:
            self._last_gc = now
            self.collect_garbage(tracked)
        self.update_metrics(len(tracked))

    def update_metrics(self, tracked: int) -> None:
        m = self.metrics
        for name, value in self.probes.stats().items():
            m.set(f"runward_sensor_kernel_{name}_total", value)
        for kind, count in self.pipeline.dedup.folded.items():
            m.set("runward_sensor_dedup_folded_total", count, kind=kind, stage="sensor")
        for kind, count in self.probes.kernel_folds().items():
            m.set("runward_sensor_dedup_folded_total", count, kind=kind, stage="kernel")
        m.set("runward_sensor_unattributed_total", self.pipeline.unattributed)
        m.set("runward_sensor_tracked_cgroups", tracked)
        m.record_programs(self._programs.read())
        path = self.config.home / "sensor-metrics.json"
        text = json.dumps(m.snapshot(), sort_keys=True)
        # Only when something moved: the write and rename were most of an idle sensor's CPU.
        if text == self._metrics_written:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            self._metrics_written = text
        except OSError as exc:
            log.debug("could not write %s: %s", path, exc)

    # ------------------------------------------------------------------ main loop
    def run(self, stop: threading.Event, poll_ms: int = 100) -> None:
        while not stop.is_set():
            self.probes.poll(poll_ms)
            self.publisher.poll()
            self.tick()
        self.tick(force=True)

    def close(self, flush_s: float = 5.0) -> int:
        """Stop serving metrics, detach the programs, flush; return undelivered events."""
        self.metrics.set("runward_sensor_ready", 0)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.probes.close()
        return self.publisher.flush(flush_s)


def make_resolver(config: SensorConfig, root: Path) -> CachingResolver:
    resolvers: list[Resolver] = [LocalResolver(Registry(registry_path(config.home)), root)]
    if config.kubernetes:
        from sensor.attribution.kubernetes import from_environment

        resolvers.append(from_environment(CgroupIndex(root), config.node))
    return CachingResolver(CompositeResolver(resolvers))


def build_sensor(config: SensorConfig) -> Sensor:
    """Build, load and wire everything; raises with a readable message on failure."""
    from sensor.build import ensure_built

    root = cgroup2_root()
    if root is None:
        raise RuntimeError("no cgroup v2 hierarchy is mounted")
    obj = ensure_built()
    metrics = Metrics()
    probes = KernelProbes(obj)
    try:
        publisher = KafkaPublisher(config.bootstrap, metrics, client_id=f"runward-sensor-{config.node}")
        return Sensor(config, probes, make_resolver(config, root), publisher, metrics, root)
    except BaseException:
        probes.close()
        raise
