"""An APD survives a restart of the profiler: Faust rebuilds its table from the changelog."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from runward.control.broker import free_port
from runward.control.replay import replay, store_barrier
from runward.control.supervisor import Supervisor
from runward.core.config import Settings
from runward.core.store import Store

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    config = Settings(
        kafka=f"127.0.0.1:{free_port()}",
        home=tmp_path_factory.mktemp("restart"),
        api_port=free_port(),
        otlp_port=free_port(),
        api_tokens="t:restart-token-0123456789:viewer",
    )
    sup = Supervisor(config, external_kafka=False)
    sup.start(with_sensor=False)
    try:
        yield sup
    finally:
        sup.stop()


def _exec(pod: str, binary: str, at: datetime) -> dict[str, Any]:
    return {
        "topic": "runward.raw.sensor",
        "key": "agents/worker",
        "value": {
            "event_id": f"{pod}-{binary}-{at.timestamp()}",
            "ts": at.isoformat(),
            "attribution": {
                "deployment": "agents/worker",
                "namespace": "agents",
                "pod": pod,
                "service_account": "worker",
            },
            "detail": {"kind": "exec", "binary": binary, "argv": [binary]},
        },
    }


def _wait_apd(store: Store, predicate: Any, timeout: float = 45) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    apd: dict[str, Any] = {}
    while time.monotonic() < deadline:
        apd = store.latest_artifact("agents/worker", "apd") or {}
        if apd and predicate(apd):
            return apd
        time.sleep(0.5)
    raise AssertionError(f"APD never matched; last: {json.dumps(apd)[:400]}")


def test_apd_continues_across_profiler_restart_and_replicas(pipeline: Supervisor, tmp_path: Path) -> None:
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    store = Store(pipeline.config.db_url)
    first = tmp_path / "first.jsonl"
    first.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                _exec("worker-a-1", "/usr/bin/python3", t0),
                _exec("worker-a-2", "/usr/bin/python3", t0 + timedelta(1e-3)),
                _exec("worker-a-1", "/usr/bin/git", t0 + timedelta(seconds=1)),
            ]
        )
    )
    replay(
        first,
        pipeline.config.kafka,
        rebase=False,
        progress=lambda _: None,
        wait_ingested=store_barrier(pipeline.config.db_url),
    )
    before = _wait_apd(store, lambda a: "exec:/usr/bin/git" in a["behaviours"].get("exec", []))
    assert before["pods_seen"] == ["worker-a-1", "worker-a-2"]  # two replicas, one APD

    pipeline.restart("profiler")

    second = tmp_path / "second.jsonl"
    second.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                _exec("worker-b-1", "/usr/bin/python3", t0 + timedelta(minutes=5)),  # the pod was recreated
                _exec("worker-b-1", "/usr/bin/curl", t0 + timedelta(minutes=5, seconds=1)),
            ]
        )
    )
    replay(second, pipeline.config.kafka, rebase=False, progress=lambda _: None)
    after = _wait_apd(store, lambda a: "exec:/usr/bin/curl" in a["behaviours"].get("exec", []))
    # One revision for the recreated pod, one for what it did new; a fresh state would be back at 1-2.
    assert after["revision"] == before["revision"] + 2, "revision numbering restarted: state was lost"
    assert after["added"] == {"exec": ["exec:/usr/bin/curl"], "exec_args": ["/usr/bin/curl"]}
    assert after["behaviours"]["exec"] == ["exec:/usr/bin/curl", "exec:/usr/bin/git", "exec:/usr/bin/python3"]
    assert after["window_started_at"] == before["window_started_at"]
    assert after["pods_seen"] == ["worker-a-1", "worker-a-2", "worker-b-1"]
