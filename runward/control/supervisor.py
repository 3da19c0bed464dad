"""`runward up`: start the broker, every stage, the API (and the sensor when it can run),
show each coming up, write a log per service, restart one that dies (with backoff), and
stop them all cleanly. Every child dies with `runward up`, even when it is SIGKILLed."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runward.control.broker import BrokerError, ensure_topics, port_open, require_kafka, start_broker
from runward.control.children import die_with_parent
from runward.control.inflight import InFlightWatch
from runward.control.wait import GaveUp, WaitTimeout, wait_until
from runward.core import signing
from runward.core.config import Settings
from runward.core.store import Store, upgrade

STAGES = ("ingest", "bom", "profiler", "correlator", "enforcer")
# Seconds before restarting a service that died, by how many times it already died in a row.
RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# A service that stayed up this long is healthy again: its next death starts the backoff over.
HEALTHY_AFTER_S = 60.0


def stage_argv(name: str) -> list[str]:
    """How `runward up` starts a stage: through `runward stage NAME`, the one place that runs one."""
    return [sys.executable, "-m", "runward.control.cli", "stage", name]


class StartError(RuntimeError):
    """A service did not come up; the message names it and its log."""


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    # How to start it again; None for the embedded broker (its memory storage dies with it).
    argv: list[str] | None = None
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    config: Settings
    external_kafka: bool
    services: list[Service] = field(default_factory=list)
    _inflight: InFlightWatch | None = None

    @property
    def inflight(self) -> InFlightWatch:
        """What the broker holds that the stages have not read: lost, and reported, if it restarts."""
        if self._inflight is None:

            def record(lost: Mapping[str, int]) -> None:
                Store(self.config.db_url).record_lost_in_flight(lost)

            self._inflight = InFlightWatch(self.config, record, self._print, time.monotonic)
        return self._inflight

    @property
    def logs(self) -> Path:
        path = self.config.home / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _print(self, text: str) -> None:
        print(text, flush=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RUNWARD_KAFKA=self.config.kafka,
            RUNWARD_HOME=str(self.config.home.resolve()),
            RUNWARD_DB=self.config.db_url,
            RUNWARD_PARTITIONS=str(self.config.partitions),
            RUNWARD_API_HOST=self.config.api_host,
            RUNWARD_API_PORT=str(self.config.api_port),
            RUNWARD_OTLP_PORT=str(self.config.otlp_port),
            RUNWARD_MAX_CLOCK_SKEW_S=str(self.config.max_clock_skew_s),
        )
        if self.config.api_tokens:
            env["RUNWARD_API_TOKENS"] = self.config.api_tokens
        if self.config.tokens_file:
            env["RUNWARD_TOKENS_FILE"] = str(self.config.tokens_file.resolve())
        if self.config.promotion_key_file:
            env["RUNWARD_PROMOTION_KEY_FILE"] = str(self.config.promotion_key_file.resolve())
        env["RUNWARD_AUDIT_SOAK_S"] = str(self.config.audit_soak_s)
        if self.config.observation_window_s is not None:
            env["RUNWARD_OBSERVATION_WINDOW_S"] = str(self.config.observation_window_s)
        return env

    def spawn(self, name: str, argv: list[str]) -> Service:
        log = self.logs / f"{name}.log"
        fh = log.open("ab")
        proc = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=self.env(),
            start_new_session=True,
            preexec_fn=die_with_parent(),  # SIGKILL of `runward up` leaves no orphans
        )
        fh.close()  # the child holds its own descriptor
        service = Service(name, proc, log, argv)
        self.services.append(service)
        return service

    def start(self, with_sensor: bool = True) -> None:
        started = time.time()
        self.config.home.mkdir(parents=True, exist_ok=True)
        self._ensure_tokens()
        self._ensure_promotion_key()
        if self.external_kafka:
            require_kafka(self.config.kafka)  # before anything starts: one line, nothing to undo
        upgrade(self.config.db_url)
        self._print(f"  store      {redact_url(self.config.db_url)} (migrated)")
        if not self.external_kafka:
            port = int(self.config.kafka.rpartition(":")[2])
            proc = start_broker(port, self.logs / "broker.log")
            self.services.append(Service("broker", proc, self.logs / "broker.log"))
            self._print(f"  broker     up on {self.config.kafka} (embedded Tansu, memory storage)")
        else:
            self._print(f"  broker     using external Kafka at {self.config.kafka}")
        created = ensure_topics(self.config.kafka, self.config.partitions)
        self._print(f"  topics     created {', '.join(created)}" if created else "  topics     all present")
        for stage in STAGES:
            self.spawn(stage, stage_argv(stage))
        store = Store(self.config.db_url)
        for stage in STAGES:
            self._wait_stage(store, stage, started)
        self.spawn("api", [sys.executable, "-m", "runward.control.api"])
        self._wait_api()
        self._start_otlp()
        self._start_watcher()
        self._start_seccomplog()
        if with_sensor:
            self._start_sensor()

    def _start_watcher(self) -> None:
        """Live Kubernetes metadata (ServiceAccounts, autonomy, revisions) when there is a cluster."""
        from edges.kubewatch.watcher import cluster_config_available

        if not cluster_config_available():
            self._print("  watcher    not started: no kubeconfig and not in a cluster")
            return
        self.spawn("watcher", [sys.executable, "-m", "edges.kubewatch"])
        self._print("  watcher    watching the cluster into runward.raw.k8s")

    def _start_seccomplog(self) -> None:
        """Audit evidence from the kernel log (seccomp SCMP_ACT_LOG, egress allowlist drops): root only."""
        if os.geteuid() != 0 or not os.access("/dev/kmsg", os.R_OK):
            self._print("  evidence   not started: reading the kernel log (/dev/kmsg) needs root")
            return
        service = self.spawn("seccomplog", [sys.executable, "-m", "sensor.seccomplog"])
        self._print(f"  evidence   reading the kernel log into runward.audit-evidence (pid {service.proc.pid})")

    def _wait_until(
        self, service: Service, ready: Callable[[], bool], timeout: float, waiting_for: str, status: str | None = None
    ) -> None:
        """Poll `ready` until it holds; fail fast, naming the log, if the process dies first."""

        def died() -> str | None:
            if service.proc.poll() is None:
                return None
            return f"{service.name} exited with {service.proc.returncode}; see {service.log}"

        try:
            wait_until(ready, timeout=timeout, abandon=died, failure=f"{service.name} {waiting_for}", status=status)
        except WaitTimeout as exc:
            raise StartError(f"{exc}; see {service.log}") from None
        except GaveUp as exc:
            raise StartError(str(exc)) from None

    def _wait_stage(self, store: Store, stage: str, since: float, timeout: float = 90) -> None:
        service = next(s for s in self.services if s.name == stage)

        def beating() -> bool:
            return any(
                row["stage"] == stage and row["updated_at"] and row["updated_at"].timestamp() >= since
                for row in store.stage_health()
            )

        self._wait_until(service, beating, timeout, "did not report a heartbeat", status=f"waiting for {stage}")
        self._print(f"  {stage:<10} up (pid {service.proc.pid}, log {service.log})")

    def _wait_api(self, timeout: float = 30) -> None:
        url = f"http://{self.config.api_host}:{self.config.api_port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait_until(self.services[-1], healthy, timeout, f"did not answer on {url}/healthz")
        self._print(f"  api        up at {url} (OpenAPI at {url}/docs)")

    def _start_otlp(self, timeout: float = 20) -> None:
        port = self.config.otlp_port
        if port_open("127.0.0.1", port):
            self._print(f"  otlp       not started: 127.0.0.1:{port} is in use (set RUNWARD_OTLP_PORT)")
            return
        service = self.spawn("otlp", [sys.executable, "-m", "runward.control.cli", "otlp", "--port", str(port)])
        self._wait_until(service, lambda: port_open("127.0.0.1", port), timeout, f"did not listen on {port}")
        self._print(f"  otlp       up at http://127.0.0.1:{port}/v1/traces (GenAI/MCP spans)")

    def _start_sensor(self, timeout: float = 180) -> None:
        try:
            from sensor.build import is_current
            from sensor.cli import sensor_unavailable_reason
        except ImportError:
            self._print("  sensor     not started: the sensor package is not installed")
            return
        reason = sensor_unavailable_reason()
        if reason:
            self._print(f"  sensor     not started: {reason}")
            return
        ready = self.config.home / "sensor.ready"
        ready.unlink(missing_ok=True)
        if not is_current():
            self._print("  sensor     compiling its eBPF programs for this kernel (first start only)")
        service = self.spawn(
            "sensor", [sys.executable, "-m", "runward.control.cli", "sensor", "--ready-file", str(ready)]
        )
        # "Up" means attached: a workload started before that would lose its first execs.
        try:
            self._wait_until(
                service, ready.exists, timeout, "did not attach its programs", status="waiting for the sensor to attach"
            )
        except StartError as exc:
            self._print(f"  sensor     not started: {exc}")
            if service.proc.poll() is None:
                service.proc.terminate()
                service.proc.wait(10)
            self.services.remove(service)
            return
        self._print(f"  sensor     up (pid {service.proc.pid}, log {service.log})")

    def _ensure_tokens(self) -> None:
        if self.config.api_tokens or self.config.tokens_file:
            return
        path = self.config.home / "tokens.json"
        if not path.exists():
            tokens = [
                {"name": "platform-viewer", "token": secrets.token_urlsafe(24), "role": "viewer"},
                {"name": "platform-approver", "token": secrets.token_urlsafe(24), "role": "approver"},
                # The intake (OTLP receiver, webhooks) takes only sender tokens.
                {"name": "local-sender", "token": secrets.token_urlsafe(24), "role": "sender"},
            ]
            path.write_text(json.dumps(tokens, indent=2))
            path.chmod(0o600)
        self.config.tokens_file = path
        self._print(f"  tokens     API tokens in {path} (viewer, approver and sender; mode 0600)")

    def _ensure_promotion_key(self) -> None:
        path = signing.ensure_key_file(self.config)
        if path is not None:
            self._print(f"  promotion  decisions signed with the key in {path} (mode 0600)")

    def restart(self, name: str) -> Service:
        """Stop one stage and start it again (it resumes from its committed offsets and changelogs)."""
        service = next(s for s in self.services if s.name == name)
        os.killpg(service.proc.pid, signal.SIGTERM)
        service.proc.wait(timeout=30)
        self.services.remove(service)
        since = time.time()
        self.spawn(name, stage_argv(name))
        self._wait_stage(Store(self.config.db_url), name, since)
        return self.services[-1]

    def exited(self) -> list[Service]:
        return [s for s in self.services if s.proc.poll() is not None]

    def tend(self) -> None:
        """Restart services that died, with backoff, saying so; call it every second or so.

        A dead embedded broker is not restarted: its memory storage went with it, so the
        stages' offsets and changelogs are gone too. That raises BrokerError, after reporting
        what it held that no stage had read (runward/control/inflight.py). A broker that came
        back empty (an external one with memory storage) is reported the same way.
        """
        now = time.monotonic()
        for service in list(self.services):
            code = service.proc.poll()
            if code is None:
                if service.failures and now - service.started > HEALTHY_AFTER_S:
                    service.failures = 0
                continue
            if service.argv is None:
                self.inflight.broker_lost(f"the embedded broker exited with {code}")
                raise BrokerError(
                    f"the embedded broker exited with {code} and its memory storage with it; see {service.log}"
                )
            if service.restart_at is None:
                delay = RESTART_BACKOFF_S[min(service.failures, len(RESTART_BACKOFF_S) - 1)]
                service.restart_at = now + delay
                self._print(
                    f"  {service.name:<10} exited with {code}; restarting in {delay:.0f} s "
                    f"(restart {service.failures + 1}; log {service.log})"
                )
            elif now >= service.restart_at:
                self.services.remove(service)
                again = self.spawn(service.name, service.argv)
                again.failures = service.failures + 1
                self._print(f"  {service.name:<10} restarted (pid {again.proc.pid})")
        self.inflight.tick()

    def stop(self) -> None:
        for service in reversed(self.services):
            if service.proc.poll() is None:
                if service.name == "broker":
                    service.proc.terminate()
                else:
                    os.killpg(service.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for service in reversed(self.services):
            try:
                service.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait()
            self._print(f"  {service.name:<10} stopped")
        self.services.clear()


def redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        return f"{scheme}{sep}{creds.split(':')[0]}:***@{host}"
    return url
