"""Chaos: the embedded broker (real Tansu, memory storage) restarts mid-stream.

Its topics, offsets and the stages' changelogs are gone. The stages must come back without a
manual step (the supervisor restarts a stage that exits) and rebuild what they learnt from the
store: the agent's APD continues from its latest stored revision, in the same window, with every
behaviour it had; no stored revision is renumbered or overwritten; its promoted mode holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runward.control.broker import ensure_topics, free_port, start_broker
from runward.control.replay import replay
from runward.control.supervisor import Supervisor
from runward.core.config import Settings
from runward.core.contracts import utcnow
from runward.core.store import Store

pytestmark = pytest.mark.e2e
D = "agents/chaos"


def _exec(event_id: str, binary: str) -> dict[str, Any]:
    return {
        "topic": "runward.raw.sensor",
        "key": D,
        "value": {
            "event_id": event_id,
            "ts": utcnow().isoformat(),
            "attribution": {"deployment": D, "namespace": "agents", "pod": "chaos-1", "service_account": "chaos"},
            "detail": {"kind": "exec", "binary": binary, "argv": [binary]},
        },
    }


def _send(sup: Supervisor, tmp_path: Path, name: str, records: list[dict[str, Any]]) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    replay(path, sup.config.kafka, rebase=False, progress=lambda _: None)


def _tend_until(sup: Supervisor, what: str, found: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.tend()  # what `runward up` does every second: restart a stage that exited
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s; logs in {sup.logs}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Supervisor, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    brokers = [start_broker(port, tmp_path / "broker-1.log")]
    config = Settings(
        kafka=f"127.0.0.1:{port}",
        home=tmp_path / "home",
        api_port=free_port(),
        otlp_port=free_port(),
        api_tokens="t:chaos-token-0123456789:viewer",
    )
    sup = Supervisor(config, external_kafka=True)
    try:
        sup.start(with_sensor=False)
        yield sup, brokers
    finally:
        sup.stop()
        for broker in brokers:
            broker.kill()
            broker.wait(10)


def test_learnt_state_survives_a_broker_restart(
    stack: tuple[Supervisor, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    sup, brokers = stack
    store = Store(sup.config.db_url)
    _send(sup, tmp_path, "before", [_exec("b1", "/usr/bin/python3"), _exec("b2", "/usr/bin/git")])
    before = _tend_until(
        sup,
        "no APD with both execs",
        lambda: (a := store.latest_artifact(D, "apd")) and "exec:/usr/bin/git" in a["behaviours"]["exec"] and a,
    )
    stored_before = {r: store.artifact(D, "apd", r) for r in store.artifact_revisions(D, "apd")}

    # The broker dies and an empty one takes its place (memory storage: topics and changelogs gone).
    brokers[0].kill()
    brokers[0].wait(10)
    killed_at = time.time()
    port = int(sup.config.kafka.rpartition(":")[2])
    brokers.append(start_broker(port, tmp_path / "broker-2.log"))
    ensure_topics(sup.config.kafka, sup.config.partitions)

    def beating_again() -> bool:
        rows = {r["stage"]: r for r in store.stage_health()}
        return all(
            rows.get(s) and rows[s]["updated_at"] and rows[s]["updated_at"].timestamp() > killed_at + 5
            for s in ("ingest", "bom", "profiler", "correlator", "enforcer")
        )

    _tend_until(sup, "stages did not come back after the broker restart", beating_again)
    # A stage that outlived the broker still holds its tables in memory; one that starts now (it
    # crashed, was rescheduled, was upgraded) finds no changelog and must rebuild from the store.
    profiler = next(s for s in sup.services if s.name == "profiler")
    os.killpg(profiler.proc.pid, signal.SIGKILL)
    restarted_at = time.time()
    _tend_until(
        sup,
        "the profiler was not restarted",
        lambda: any(
            r["stage"] == "profiler" and r["updated_at"] and r["updated_at"].timestamp() > restarted_at + 1
            for r in store.stage_health()
        ),
    )
    _send(sup, tmp_path, "after", [_exec("a1", "/usr/bin/curl")])
    after = _tend_until(
        sup,
        "the APD did not take the exec sent after the restart",
        lambda: (a := store.latest_artifact(D, "apd")) and "exec:/usr/bin/curl" in a["behaviours"]["exec"] and a,
    )
    assert after["revision"] == before["revision"] + 1, "revision numbering restarted: state was lost"
    assert after["window_started_at"] == before["window_started_at"]
    assert set(after["behaviours"]["exec"]) == {"exec:/usr/bin/curl", "exec:/usr/bin/git", "exec:/usr/bin/python3"}
    assert after["added"]["exec"] == ["exec:/usr/bin/curl"]
    for revision, body in stored_before.items():  # nothing stored was overwritten
        assert store.artifact(D, "apd", revision) == body
    assert store.artifact_revisions(D, "apd") == [*stored_before, after["revision"]]
    log = (sup.logs / "profiler.log").read_text()
    assert f"APD of {D} rebuilt from stored revision {before['revision']}" in log
