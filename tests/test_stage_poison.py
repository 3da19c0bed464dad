"""Poison records on the real broker: a record whose output is over the broker's 1 MB limit, one
holding a lone surrogate, one that is not JSON and a good one, sent in one burst so they share a
batch. The bad ones are dead-lettered (or sanitised) with the reason; the rest are processed and
the worker lives on."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from confluent_kafka import Producer

from runward.core.store import Store
from runward.core.topics import ATTACK_STORIES, DEAD_LETTER, SIGNALS
from tests.bom.stage_util import own_broker, running_stages
from tests.kafka_reading import read_records

pytestmark = pytest.mark.e2e


def _signal(signal_id: str, deployment: str, title: str, second: int = 0) -> bytes:
    value = {
        "signal_id": signal_id,
        "deployment": deployment,
        "ts": datetime(2026, 11, 30, 12, 0, second, tzinfo=timezone.utc).isoformat(),
        "surface": "process",
        "title": title,
        "behaviour": "exec:/bin/sh",
        "severity": 3,
        "source_event": signal_id,
    }
    return json.dumps(value).encode()  # json.dumps escapes a lone surrogate as \\ud800


def test_poison_records_in_a_batch_are_dead_lettered_and_the_rest_processed(tmp_path: Path) -> None:
    with own_broker(tmp_path) as bootstrap, running_stages(["correlator"], bootstrap, tmp_path) as db_url:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "message.max.bytes": 2_000_000})
        # The story repeats a signal's title (signal, narrative, OCSF text): 400 kB in, > 1 MB out.
        records = [
            ("agents/big", _signal("big", "agents/big", "x" * 400_000)),
            ("agents/odd", _signal("odd", "agents/odd", "bad \ud800 title")),
            ("agents/bad", b"{not json"),
            ("agents/good", _signal("good", "agents/good", "exec of /bin/sh")),
            ("agents/big", _signal("after", "agents/big", "exec of /bin/sh", second=1)),
        ]
        for key, value in records:
            producer.produce(SIGNALS.name, key=key.encode(), value=value)
        assert producer.flush(30) == 0

        stories = read_records(bootstrap, ATTACK_STORIES.name, lambda v: True, want=3, timeout=90)
        by_deployment = {v["deployment"]: v for _, v in stories}
        assert set(by_deployment) == {"agents/odd", "agents/good", "agents/big"}, by_deployment.keys()
        assert by_deployment["agents/odd"]["signals"][0]["title"] == "bad \ufffd title"
        # The failed record left no state behind: the next signal of that agent starts its story.
        big = by_deployment["agents/big"]
        assert [s["signal_id"] for s in big["signals"]] == ["after"] and big["version"] == 1

        letters = read_records(bootstrap, DEAD_LETTER.name, lambda v: v["stage"] == "correlator", want=2, timeout=30)
        reasons = sorted(v["reason"] for _, v in letters)
        assert len(reasons) == 2, reasons
        assert any("over the 1000000-byte record limit" in r and ATTACK_STORIES.name in r for r in reasons), reasons
        assert any("not valid JSON" in r for r in reasons), reasons
        stored = Store(db_url).stories()
        assert {s["deployment"] for s in stored} == {"agents/odd", "agents/good", "agents/big"}
        # Rendered once per batch, for the version published and the one stored: both carry it.
        assert by_deployment["agents/good"]["ocsf"]["class_uid"] == 2004
        assert all(s["ocsf"]["metadata"]["uid"] == s["story_id"] for s in stored)
        assert len(Store(db_url).dead_letters(stage="correlator")) == 2
