"""Live metadata end to end, as real processes: the replayed cluster -> `python -m edges.kubewatch`
-> runward.raw.k8s -> the ingest stage -> runward.events.enriched.

What issue 9 found missing: for a live agent (a sensor event that only knows its pod UID) the
ServiceAccount was null and `runward.io/autonomy` never read. Here both come from the watcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from runward.core.kafka import producer_config
from runward.core.store import upgrade
from runward.core.topics import ENRICHED, RAW_SENSOR
from tests.kafka_reading import read_records
from tests.kubewatch.test_watcher_replay import SENSOR_FIXTURES, seeded

pytestmark = pytest.mark.e2e


@pytest.fixture
def ingest(kafka_bootstrap: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    db = f"sqlite:///{tmp_path}/runward.db"
    upgrade(db)
    env = {"RUNWARD_KAFKA": kafka_bootstrap, "RUNWARD_DB": db, "RUNWARD_HOME": str(tmp_path)}
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest.app"],
        env={**_inherited(), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _inherited() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RUNWARD_")}


def _exec_in_pod(pod_uid: str, namespace: str) -> dict[str, Any]:
    # What the sensor knows of a live process without Kubernetes access: cgroup -> pod UID only.
    return {
        "event_id": f"e2e-{uuid.uuid4().hex}",
        "ts": datetime.now(timezone.utc).isoformat(),
        "pid": 4242,
        "comm": "python",
        "attribution": {"node": "kubewatch-node", "pod_uid": pod_uid},
        "detail": {"kind": "exec", "binary": "/usr/bin/curl", "argv": ["curl", "https://example.org"]},
    }


def test_live_agent_gets_its_service_account_and_autonomy(
    kafka_bootstrap: str, tmp_path: Path, ingest: subprocess.Popen[bytes]
) -> None:
    namespace = f"kw-{uuid.uuid4().hex[:8]}"
    deployment = f"{namespace}/researcher"
    server = seeded(namespace)
    pod = json.loads((SENSOR_FIXTURES / "pods.json").read_text())["items"][0]
    assert pod["metadata"]["name"].startswith("researcher-")
    pod_uid = pod["metadata"]["uid"] + namespace[-8:]  # unique per run: the registry outlives tests
    server.collections["pods"].objects = {
        k: _with_uid(v, pod_uid) if v["metadata"]["name"] == pod["metadata"]["name"] else v
        for k, v in server.collections["pods"].objects.items()
    }
    with server.running():
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edges.kubewatch",
                "--kubeconfig",
                str(server.kubeconfig(tmp_path / "kubeconfig")),
                "--kafka",
                kafka_bootstrap,
                "--namespace",
                namespace,
                "--resource",
                "replicasets",
                "--resource",
                "pods",
                "--resource",
                "deployments",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            specs = read_records(
                kafka_bootstrap,
                ENRICHED.name,
                lambda v: v.get("deployment") == deployment and v.get("kind") == "deployment_spec",
                want=1,
                timeout=120,
            )
            assert specs, f"ingest produced no deployment_spec for {deployment}; see {tmp_path}/ingest.log"
            spec = specs[0][1]
            assert spec["detail"]["autonomy"] == "low" and spec["service_account"] == "researcher"

            # A live process known only by its pod UID is attributed to the agent and its ServiceAccount.
            producer = Producer(producer_config(kafka_bootstrap, "e2e-sensor"))
            execs: list[tuple[str | None, dict[str, Any]]] = []
            deadline = time.monotonic() + 60
            while not execs and time.monotonic() < deadline:
                event = _exec_in_pod(pod_uid, namespace)
                producer.produce(
                    RAW_SENSOR.name, key=f"kubewatch-node:{pod_uid}".encode(), value=json.dumps(event).encode()
                )
                producer.flush(10)
                execs = read_records(
                    kafka_bootstrap,
                    ENRICHED.name,
                    lambda v, eid=event["event_id"]: v.get("event_id") == eid,
                    want=1,
                    timeout=5,
                )
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
    assert execs, "the sensor event was never attributed"
    enriched = execs[0][1]
    assert enriched["deployment"] == deployment
    assert enriched["service_account"] == "researcher"
    assert enriched["pod"] == pod["metadata"]["name"]
    # ... and to the revision its pod runs: the pod template, as the Deployment's own spec event names it.
    assert enriched["revision"] and enriched["revision"].startswith("sha256:")
    assert spec["detail"]["revision"] and spec["detail"]["revision"].startswith("sha256:")


def _with_uid(pod: dict[str, Any], uid: str) -> dict[str, Any]:
    pod = json.loads(json.dumps(pod))
    pod["metadata"]["uid"] = uid
    return pod
