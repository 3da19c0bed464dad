"""Event time on the real broker and stages (ingest + profiler as processes): a backdated event
after a finished window is a signal, not baseline; a year-0001 first event does not finish a new
agent's window; a zone-less time is dead-lettered by ingest with the reason and the agent goes on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from runward.core.contracts import Attribution, ConnectDetail, ExecDetail, RawSensorEvent, utcnow
from runward.core.store import Store
from runward.core.topics import DEAD_LETTER, ENRICHED, RAW_SENSOR, SIGNALS
from tests.bom.stage_util import own_broker, publish, running_stages
from tests.kafka_reading import read_records

pytestmark = pytest.mark.e2e
WINDOW_S = 8
EXFIL = "egress:exfil.attacker.example:4444/tcp"


def raw(deployment: str, event_id: str, ts: datetime, detail: Any) -> tuple[str, RawSensorEvent]:
    name = deployment.partition("/")[2]
    who = Attribution(deployment=deployment, namespace="agents", pod=f"{name}-1", service_account=name)
    return deployment, RawSensorEvent(event_id=event_id, ts=ts, attribution=who, detail=detail)


def exec_(binary: str) -> ExecDetail:
    return ExecDetail(kind="exec", binary=binary, argv=[binary])


def wait_for(what: str, found: Callable[[], Any], timeout: float = 45) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def test_event_time_is_evidence_not_authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWARD_OBSERVATION_WINDOW_S", str(WINDOW_S))
    monkeypatch.setenv("RUNWARD_MAX_CLOCK_SKEW_S", "300")
    with own_broker(tmp_path) as bootstrap, running_stages(["ingest", "profiler"], bootstrap, tmp_path) as db_url:
        store = Store(db_url)

        # A year-0001 first event and one just after it: the window starts at receipt and is not over.
        fresh = "agents/fresh"
        publish(
            bootstrap,
            RAW_SENSOR,
            [
                raw(fresh, "f1", datetime(1, 1, 1, tzinfo=timezone.utc), exec_("/usr/bin/python3")),
                raw(fresh, "f2", utcnow(), exec_("/usr/bin/git")),
            ],
        )
        apd = wait_for(
            "no APD with both execs",
            lambda: (a := store.latest_artifact(fresh, "apd")) and "exec:/usr/bin/git" in a["behaviours"]["exec"] and a,
        )
        started = datetime.fromisoformat(apd["window_started_at"])
        assert abs(started - utcnow()) < timedelta(minutes=1), apd["window_started_at"]
        assert apd["window_status"] != "complete"

        # A baseline whose window finishes, then a connect backdated to 2020: a signal, not baseline.
        agent = "agents/finished"
        publish(bootstrap, RAW_SENSOR, [raw(agent, "a1", utcnow(), exec_("/usr/bin/python3"))])
        wait_for("no first APD", lambda: store.latest_artifact(agent, "apd"))
        time.sleep(WINDOW_S + 1)
        publish(bootstrap, RAW_SENSOR, [raw(agent, "a2", utcnow(), exec_("/usr/bin/python3"))])
        wait_for(
            "the window did not complete",
            lambda: (store.latest_artifact(agent, "apd") or {}).get("window_status") == "complete",
        )
        backdated = datetime(2020, 1, 1, tzinfo=timezone.utc)
        connect = ConnectDetail(
            kind="connect", address="198.51.100.7", port=4444, protocol="tcp", dns_name="exfil.attacker.example"
        )
        publish(bootstrap, RAW_SENSOR, [raw(agent, "a3", backdated, connect)])
        (enriched,) = [
            v for _, v in read_records(bootstrap, ENRICHED.name, lambda v: v["event_id"] == "a3", want=1, timeout=45)
        ]
        assert "clock_skew" in enriched["flags"]
        assert datetime.fromisoformat(enriched["claimed_ts"]) == backdated
        assert enriched["ts"] == enriched["received_at"]
        (signal,) = [
            v
            for _, v in read_records(
                bootstrap,
                SIGNALS.name,
                lambda v: v["deployment"] == agent and v["behaviour"] == EXFIL,
                want=1,
                timeout=45,
            )
        ]
        assert signal["source_event"] == "a3"
        latest = store.latest_artifact(agent, "apd") or {}
        assert EXFIL not in latest["behaviours"].get("egress", [])

        # A zone-less time: dead-lettered by ingest with the reason; the agent's next event folds.
        publish(bootstrap, RAW_SENSOR, [raw(fresh, "naive", datetime(2026, 11, 30, 12, 0), exec_("/bin/sh"))])
        (letter,) = [
            v
            for _, v in read_records(
                bootstrap,
                DEAD_LETTER.name,
                lambda v: v["stage"] == "ingest" and "naive" in v["payload"],
                want=1,
                timeout=45,
            )
        ]
        assert "has no time zone" in letter["reason"]
        publish(bootstrap, RAW_SENSOR, [raw(fresh, "f3", utcnow(), exec_("/usr/bin/curl"))])
        # Its window is over by now: the new exec is a deviation, which shows the fold went on.
        read = read_records(bootstrap, SIGNALS.name, lambda v: v["source_event"] == "f3", want=1, timeout=45)
        assert [v["behaviour"] for _, v in read] == ["exec:/usr/bin/curl"]
        assert store.dead_letters("profiler") == []
