"""`/metrics` on real processes: a stage (ingest), the API and the OTLP receiver, started as
`runward stage ingest`, `runward api` and `runward otlp` against the real broker, and the sensor;
scraped over HTTP after real records went through."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from runward.control.broker import free_port

pytestmark = pytest.mark.e2e

TOKEN = "metrics-viewer-token-0123456789"
SENDER = "metrics-audit-sender-token-0123456789"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "runward.control.cli", *argv], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.fixture
def processes(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    stage_port, api_port, otlp_port, otlp_metrics_port = free_port(), free_port(), free_port(), free_port()
    env = dict(
        os.environ,
        RUNWARD_KAFKA=kafka_bootstrap,
        RUNWARD_HOME=str(tmp_path / "home"),
        RUNWARD_DB=f"sqlite:///{tmp_path}/runward.db",
        RUNWARD_METRICS_PORT=str(stage_port),
        RUNWARD_API_PORT=str(api_port),
        RUNWARD_API_TOKENS=f"scraper:{TOKEN}:viewer,apiserver:{SENDER}:sender",
    )
    subprocess.run(
        [sys.executable, "-m", "runward.control.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    procs = {
        "ingest": _spawn(["stage", "ingest"], env, tmp_path, tmp_path / "ingest.log"),
        "api": _spawn(["api"], env, tmp_path, tmp_path / "api.log"),
        "otlp": _spawn(
            ["otlp", "--port", str(otlp_port)],
            dict(env, RUNWARD_METRICS_PORT=str(otlp_metrics_port)),
            tmp_path,
            tmp_path / "otlp.log",
        ),
    }
    try:
        yield {
            "stage_port": stage_port,
            "api_port": api_port,
            "otlp_port": otlp_port,
            "otlp_metrics_port": otlp_metrics_port,
            "logs": tmp_path,
            "bootstrap": kafka_bootstrap,
        }
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _raw_exec(event_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "ts": datetime.now(timezone.utc).isoformat(),
            "attribution": {
                "deployment": "agents/metrics",
                "namespace": "agents",
                "pod": "metrics-1",
                "service_account": "metrics",
            },
            "detail": {"kind": "exec", "binary": "/usr/bin/python3", "argv": ["python3"]},
        }
    ).encode()


def _scrape_until(url: str, ready: object, logs: Path, timeout: float = 90.0, **kwargs: object) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
            last = response.text
            if response.status_code == 200 and ready(_samples(last)):  # type: ignore[operator]
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(logs.glob("*.log")))
    raise AssertionError(f"{url} never showed the expected counters; last scrape:\n{last[-2000:]}\n{tail}")


def test_stage_and_api_serve_metrics_that_move(processes: dict[str, object]) -> None:
    logs = processes["logs"]
    assert isinstance(logs, Path)
    stage_url = f"http://127.0.0.1:{processes['stage_port']}/metrics"
    api = f"http://127.0.0.1:{processes['api_port']}"

    # The stage's endpoint is up before any record arrives (the probe the manifests use).
    _scrape_until(stage_url, lambda s: True, logs)

    producer = Producer({"bootstrap.servers": processes["bootstrap"]})
    producer.produce("runward.raw.sensor", key=b"agents/metrics", value=_raw_exec("metrics-1"))
    producer.produce("runward.raw.sensor", key=b"agents/metrics", value=_raw_exec("metrics-2"))
    producer.produce("runward.raw.sensor", key=b"agents/metrics", value=b"{not json")
    assert producer.flush(30) == 0

    def stage_moved(s: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
        return (
            _value(s, "runward_stage_records_in_total", stage="ingest", topic="runward.raw.sensor") >= 3
            and _value(s, "runward_stage_dead_letters_total", stage="ingest") >= 1
            and _value(s, "runward_stage_records_out_total", stage="ingest", topic="runward.events.enriched") >= 2
        )

    text = _scrape_until(stage_url, stage_moved, logs)
    samples = _samples(text)
    # One observation per batch the stage handled (the three records may come in one batch).
    assert _value(samples, "runward_stage_processing_seconds_count", stage="ingest") >= 1
    assert any(name == "runward_stage_consumer_lag" for name, _ in samples)
    # Faust's data directory is under RUNWARD_HOME, not the working directory (root-owned in an image).
    assert (logs / "home" / "faust" / "runward-ingest").is_dir()
    assert not (logs / "runward-ingest-data").exists()

    # The API: /metrics needs a token like every other route, and counts the requests it served.
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "API never came up"
        time.sleep(0.3)
    assert httpx.get(f"{api}/metrics", timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{api}/v1/stages", headers=auth, timeout=5).status_code == 200

    def api_moved(s: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
        return _value(s, "runward_api_requests_total", method="GET", route="/v1/stages", status="200") >= 1

    text = _scrape_until(f"{api}/metrics", api_moved, logs, headers=auth)
    samples = _samples(text)
    assert _value(samples, "runward_api_requests_total", method="GET", route="/metrics", status="401") >= 1
    assert _value(samples, "runward_api_request_seconds_count", route="/v1/stages") >= 1

    # The receiver: its requests by route and status, on its metrics port.
    receiver = f"http://127.0.0.1:{processes['otlp_port']}"
    audit = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "items": [
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": "5b0c3a52-7c43-4a3e-9d8f-1f0e2d3c4b5a",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/namespaces/agents/secrets",
                "verb": "list",
                "user": {"username": "system:serviceaccount:agents:metrics"},
                "objectRef": {"resource": "secrets", "namespace": "agents", "apiVersion": "v1"},
                "responseStatus": {"code": 200},
            }
        ],
    }
    sender = {"Authorization": f"Bearer {SENDER}"}
    deadline = time.monotonic() + 60
    while True:
        try:
            accepted = httpx.post(f"{receiver}/v1/k8s-audit", json=audit, headers=sender, timeout=10)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "OTLP receiver never came up"
            time.sleep(0.3)
    assert accepted.status_code == 200, accepted.text
    rejected = httpx.post(f"{receiver}/v1/k8s-audit", content=b"{not json", headers=sender, timeout=10)
    assert rejected.status_code == 400

    def receiver_moved(s: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
        return (
            _value(s, "runward_intake_requests_total", route="/v1/k8s-audit", status="200") >= 1
            and _value(s, "runward_intake_requests_total", route="/v1/k8s-audit", status="400") >= 1
        )

    _scrape_until(f"http://127.0.0.1:{processes['otlp_metrics_port']}/metrics", receiver_moved, logs)


@pytest.mark.kernel
def test_sensor_serves_prometheus_metrics_from_the_kernel(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The sensor as a real process (root, real eBPF): events of a workload and its BPF
    programs' counters, in the Prometheus text prometheus_client renders."""
    if os.geteuid() != 0 or not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("needs root and a BTF kernel")
    port = free_port()
    env = dict(os.environ, RUNWARD_HOME=str(tmp_path / "home"), RUNWARD_KAFKA=kafka_bootstrap)
    sensor = _spawn(
        ["sensor", "--no-kubernetes", "--metrics-port", str(port), "--syscall-interval", "0.5"],
        env,
        tmp_path,
        tmp_path / "sensor.log",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        _scrape_until(url, lambda s: _value(s, "runward_sensor_ready") == 1, tmp_path, timeout=120)
        workload = subprocess.run(
            [sys.executable, "-m", "runward.control.cli", "run", "--deployment", "agents/metrics",
             "--service-account", "metrics", "--", "/bin/sh", "-c", "/bin/true; /bin/true"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert workload.returncode == 0, workload.stderr

        def moved(s: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
            # Events count as they are published; kernel totals and program stats on the next tick.
            return (
                _value(s, "runward_sensor_events_total", kind="exec") >= 1
                and _value(s, "runward_sensor_kernel_emitted_total") >= 1
            )

        samples = _samples(_scrape_until(url, moved, tmp_path))
        programs = {dict(labels)["program"] for name, labels in samples if name == "runward_sensor_program_runs_total"}
        assert {"rw_exec", "rw_exit"} <= programs, programs  # by name, from bpf(2), for every attached program
    finally:
        sensor.terminate()
        try:
            sensor.wait(20)
        except subprocess.TimeoutExpired:
            sensor.kill()
