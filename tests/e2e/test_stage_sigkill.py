"""Chaos: SIGKILL of each stage in turn while records stream in.

Every raw record must end up processed (an enriched event with its id) or dead-lettered with
its reason, and what the later stages learnt must be whole: each agent's APD holds every
behaviour sent, and the enforcer's latest policy bundle follows the latest APD revision. The
supervisor restarts a killed stage, as `runward up` does.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runward.control.broker import free_port
from runward.control.replay import replay
from runward.control.supervisor import Supervisor
from runward.core.config import Settings
from runward.core.contracts import utcnow
from runward.core.store import Store
from runward.core.topics import DEAD_LETTER, ENRICHED
from tests.kafka_reading import read_records

pytestmark = pytest.mark.e2e
AGENTS = [f"agents/kill-{n}" for n in range(4)]
STAGES = ("ingest", "bom", "profiler", "correlator", "enforcer")
PER_BATCH = 40


def _exec(agent: str, event_id: str, binary: str) -> dict[str, Any]:
    name = agent.partition("/")[2]
    return {
        "topic": "runward.raw.sensor",
        "key": agent,
        "value": {
            "event_id": event_id,
            "ts": utcnow().isoformat(),
            "attribution": {"deployment": agent, "namespace": "agents", "pod": f"{name}-1", "service_account": name},
            "detail": {"kind": "exec", "binary": binary, "argv": [binary]},
        },
    }


def _unattributable(event_id: str) -> dict[str, Any]:
    """A record ingest cannot attribute: it must be dead-lettered, not lost."""
    return {
        "topic": "runward.raw.sensor",
        "key": "node-1:42",
        "value": {
            "event_id": event_id,
            "ts": utcnow().isoformat(),
            "attribution": {"node": "node-1", "cgroup_id": 42, "container_id": f"nobody-{event_id}"},
            "detail": {"kind": "exec", "binary": "/bin/true", "argv": ["/bin/true"]},
        },
    }


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Supervisor]:
    config = Settings(
        kafka=f"127.0.0.1:{free_port()}",
        home=tmp_path / "home",
        api_port=free_port(),
        otlp_port=free_port(),
        api_tokens="t:sigkill-token-0123456789:viewer",
    )
    sup = Supervisor(config, external_kafka=False)
    sup.start(with_sensor=False)
    try:
        yield sup
    finally:
        sup.stop()


def _tend_until(sup: Supervisor, what: str, found: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.tend()
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s; logs in {sup.logs}")


def test_every_record_survives_a_sigkill_of_each_stage(pipeline: Supervisor, tmp_path: Path) -> None:
    sup, store = pipeline, Store(pipeline.config.db_url)
    sent: dict[str, set[str]] = {a: set() for a in AGENTS}
    good, bad = [], []
    for batch, stage in enumerate(STAGES):
        records = []
        for i in range(PER_BATCH):
            agent = AGENTS[i % len(AGENTS)]
            binary = f"/opt/bin/tool-{batch}-{i}"
            event_id = f"k{batch}-{i}"
            records.append(_exec(agent, event_id, binary))
            sent[agent].add(f"exec:{binary}")
            good.append(event_id)
        bad.append(f"bad-{batch}")
        records.insert(PER_BATCH // 2, _unattributable(bad[-1]))
        path = tmp_path / f"batch-{batch}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in records))
        replay(path, sup.config.kafka, rebase=False, progress=lambda _: None)
        victim = next(s for s in sup.services if s.name == stage)
        os.killpg(victim.proc.pid, signal.SIGKILL)  # mid-stream: the batch is still being handled
        sup.tend()

    def apds_whole() -> bool:
        for agent, behaviours in sent.items():
            apd = store.latest_artifact(agent, "apd") or {}
            if not behaviours <= set(apd.get("behaviours", {}).get("exec", [])):
                return False
        return True

    _tend_until(sup, "an APD is missing behaviours that were sent", apds_whole, timeout=240)
    restarted = {s.name for s in sup.services if s.failures}
    assert restarted == set(STAGES), f"not every stage was killed and restarted: {restarted}"

    # At least once: a record handled again after a kill is published again, so the topics are read
    # for each id's first copy (reading `want` records would stop early on the duplicates).
    unseen, unlettered = set(good), set(bad)

    def first_enriched(v: dict[str, Any]) -> bool:
        if v["event_id"] not in unseen:
            return False
        unseen.discard(v["event_id"])
        return True

    def first_letter(v: dict[str, Any]) -> bool:
        found = {b for b in unlettered if v["stage"] == "ingest" and b in (v["payload"] or "")}
        unlettered.difference_update(found)
        return bool(found)

    enriched = {v["event_id"] for _, v in read_records(sup.config.kafka, ENRICHED.name, first_enriched, len(good), 60)}
    letters = read_records(sup.config.kafka, DEAD_LETTER.name, first_letter, len(bad), 60)
    lettered = {b for _, v in letters for b in bad if b in v["payload"]}
    assert set(good) - enriched == set(), "records neither processed nor dead-lettered"
    assert lettered == set(bad)
    assert all("cannot attribute" in v["reason"] for _, v in letters)

    def policies_follow() -> bool:
        for agent in AGENTS:
            apd, policy = store.latest_artifact(agent, "apd"), store.latest_artifact(agent, "policy")
            if not apd or not policy or policy["apd_revision"] != apd["revision"]:
                return False
        return True

    _tend_until(sup, "the enforcer's bundles do not follow the latest APD revisions", policies_follow, timeout=120)
    assert {r["stage"] for r in store.stage_health()} >= set(STAGES)
