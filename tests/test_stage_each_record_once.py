"""Every record a stage reads is handed to its handler exactly once, on the real broker.

A stage keeps per-key state in a Faust table and routes each table write to its record's
partition. That routing once set the stream's current event from the handler, while Faust's
batching task, waiting for the batch to be handled, read the event of the record it was adding
from the same attribute: under a steady flow, a new record's place in the next batch went to an
event of the batch before. One record was handled twice, another never, and its offset was
never acknowledged. Found in the scenario eval (a Deployment's spec lost, so an attack was
learnt as baseline) and in the profiler-restart test (the last event after a restart lost).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from runward.core.contracts import Signal, Surface
from runward.core.topics import SIGNALS
from tests.bom.stage_util import own_broker, publish, script_stage

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
# A stage with a table, a handler that yields to the event loop per record (as a store read or a
# slow fold does), and a log of what it was handed: the record's place and its signal id.
COUNTING_STAGE = """
import asyncio, json, os, sys
from pydantic import BaseModel
from runward.core.config import Settings
from runward.core.stage import Stage
from runward.core.topics import SIGNALS, APD


class Seen(BaseModel):
    count: int = 0


stage = Stage("each-once", inputs=[SIGNALS], outputs=[APD], config=Settings())
seen = stage.model_table("each-once-state", Seen)
out = open(sys.argv[1], "a", buffering=1)


async def handle(signal, ctx):
    await asyncio.sleep(0.002)
    state = seen.get(signal.deployment) or Seen()
    seen[signal.deployment] = Seen(count=state.count + 1)
    out.write(json.dumps([ctx.source.partition, ctx.source.offset, signal.signal_id]) + "\\n")
    return []


stage.run(handle)
stage.main()
"""

BURSTS, PER_BURST = 8, 150


def _signal(n: int) -> Signal:
    return Signal(
        signal_id=f"s{n}",
        deployment=f"agents/bot-{n % 13}",
        ts=datetime(2026, 11, 30, tzinfo=timezone.utc),
        surface=Surface.PROCESS,
        title="outside APD baseline: exec:/bin/sh",
        behaviour="exec:/bin/sh",
        severity=3,
        source_event=f"e{n}",
    )


def _handled(path: Path) -> list[tuple[int, int, str]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [(int(p), int(o), str(s)) for p, o, s in rows]


def test_each_record_is_handled_once_under_a_steady_flow(tmp_path: Path) -> None:
    script, handled_log = tmp_path / "each_once.py", tmp_path / "handled.jsonl"
    script.write_text(COUNTING_STAGE)
    total = BURSTS * PER_BURST
    with own_broker(tmp_path) as bootstrap, script_stage(script, bootstrap, tmp_path, str(handled_log)) as proc:
        # Bursts while the stage is busy: records arrive as batches are being handled.
        for burst in range(BURSTS):
            publish(bootstrap, SIGNALS, [(s.deployment, s) for s in map(_signal, _range(burst))])
            time.sleep(0.3)
        deadline = time.monotonic() + 120
        while len(_handled(handled_log)) < total and time.monotonic() < deadline:
            assert proc.poll() is None, f"the stage died; see {tmp_path / 'stage.log'}"
            time.sleep(0.5)
        time.sleep(2)  # anything handled twice shows up after the last new one
        handled = _handled(handled_log)
    ids = [signal_id for _, _, signal_id in handled]
    places = [(partition, offset) for partition, offset, _ in handled]
    assert sorted(set(ids)) == sorted(f"s{n}" for n in range(total)), "records never handed to the handler"
    assert len(ids) == len(set(ids)), "records handed to the handler twice"
    assert len(places) == len(set(places))


def _range(burst: int) -> range:
    return range(burst * PER_BURST, (burst + 1) * PER_BURST)
