"""The stage harness refuses to publish a record on a topic of another record type: the input
goes to the dead-letter topic with the reason, nothing reaches the wrong topic, the worker lives on."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from runward.core.contracts import Signal, Surface
from runward.core.store import Store
from runward.core.topics import APD, DEAD_LETTER, SIGNALS
from tests.bom.stage_util import own_broker, publish, script_stage
from tests.kafka_reading import read_records

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
WRONG_STAGE = """
from runward.core.config import Settings
from runward.core.stage import Output, Stage
from runward.core.topics import APD, SIGNALS

stage = Stage("wrong-record", inputs=[SIGNALS], outputs=[APD], config=Settings())


async def handle(signal, ctx):
    return [Output(APD, signal.deployment, signal)]  # a Signal where an ApdRevision belongs


stage.run(handle)
stage.main()
"""


def _signal(signal_id: str) -> Signal:
    return Signal(
        signal_id=signal_id,
        deployment="agents/bot",
        ts=datetime(2026, 11, 30, tzinfo=timezone.utc),
        surface=Surface.PROCESS,
        title="outside APD baseline: exec:/bin/sh",
        behaviour="exec:/bin/sh",
        severity=3,
        source_event="e1",
    )


def test_a_record_of_the_wrong_type_is_dead_lettered_not_published(tmp_path: Path) -> None:
    script = tmp_path / "wrong_stage.py"
    script.write_text(WRONG_STAGE)
    with own_broker(tmp_path) as bootstrap, script_stage(script, bootstrap, tmp_path) as proc:
        publish(bootstrap, SIGNALS, [("agents/bot", _signal("s1")), ("agents/bot", _signal("s2"))])
        letters = read_records(bootstrap, DEAD_LETTER.name, lambda v: v["stage"] == "wrong-record", want=2, timeout=90)
        assert proc.poll() is None, f"the stage died; see {tmp_path / 'stage.log'}"
        assert len(letters) == 2, f"expected both inputs dead-lettered; see {tmp_path / 'stage.log'}"
        for key, letter in letters:
            assert key == "wrong-record" and letter["source"]["topic"] == SIGNALS.name
            assert "cannot publish a Signal on runward.apd: the topic carries ApdRevision" in letter["reason"]
        assert read_records(bootstrap, APD.name, lambda v: True, want=1, timeout=3) == []
        assert len(Store(f"sqlite:///{tmp_path / 'runward.db'}").dead_letters(stage="wrong-record")) == 2
