"""In-process stage micro-benchmark: each stage's batch harness and handler on the flood's mix,
without Kafka or Faust.

`run.py` measures the stages as they run (Faust, aiokafka, the broker); this feeds the same
records (`run.raw_mix`, `signal_mix`, `apd_mix`; profiler and bom get what ingest enriched)
through the real `Stage._handle_batch` in batches of `BATCH_MAX`, with the stage's real
handler, codec, state tables (plain dicts in place of Faust tables) and SQLite store, and
prints µs of CPU per record. What it does not see: Faust's per-event work and the transport.

    PYTHONPATH=$PWD .venv/bin/python bench/pipeline/inproc.py --events 20000
    PYTHONPATH=$PWD .venv/bin/python bench/pipeline/inproc.py --stages profiler --profile /tmp/p.prof
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as flood  # noqa: E402  # the flood's workload, record for record

from runward.core import stage as stage_module  # noqa: E402
from runward.core.store.migrate import upgrade  # noqa: E402
from runward.core.topics import APD, ATTACK_STORIES, ENRICHED, SIGNALS  # noqa: E402


@dataclass(frozen=True)
class _TP:
    topic: str
    partition: int


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def tp(self) -> _TP:
        return _TP(self.topic, self.partition)


@dataclass
class _Event:
    message: _Message


class _Sink:
    """A stage's output topic: keeps what was sent."""

    def __init__(self, name: str, sent: list[tuple[str, bytes, bytes]]) -> None:
        self.name, self.sent = name, sent

    async def send(self, key: bytes, value: bytes, headers: Any = None) -> asyncio.Future[None]:
        self.sent.append((self.name, key, value))
        # What Faust's send returns: the delivery's future, which the harness awaits per batch.
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def _build(stage_name: str) -> tuple[Any, Any, list[tuple[str, bytes, bytes]]]:
    """The stage as `services.<stage>.app.build` makes it, with dict tables and recording sinks."""
    import importlib

    from runward.core.config import settings

    captured: dict[str, Any] = {}
    sent: list[tuple[str, bytes, bytes]] = []
    real_run, real_table, real_global = (
        stage_module.Stage.run,
        stage_module.Stage.table,
        stage_module.Stage.global_table,
    )
    stage_module.Stage.run = lambda self, handler: captured.update(handler=handler)  # type: ignore[method-assign]
    stage_module.Stage.table = lambda self, name: {}  # type: ignore[method-assign]
    stage_module.Stage.global_table = lambda self, name: {}  # type: ignore[method-assign]
    try:
        app = importlib.import_module(f"services.{stage_name}.app")
        stage = app.build(settings())
    finally:
        stage_module.Stage.run, stage_module.Stage.table, stage_module.Stage.global_table = (
            real_run,
            real_table,
            real_global,
        )
    stage._topics = {name: _Sink(name, sent) for name in stage._topics}
    stage._track_lag = lambda message: None  # the consumer is not running
    return stage, captured["handler"], sent


def _events(records: Iterable[tuple[str, bytes | None, bytes | None]]) -> list[_Event]:
    offsets: dict[str, int] = {}
    out = []
    for topic, key, value in records:
        offset = offsets.get(topic, 0)
        offsets[topic] = offset + 1
        out.append(_Event(_Message(topic, hash(key) % 4, offset, key, value)))
    return out


def _json(records: Iterator[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(topic, key.encode(), json.dumps(value).encode()) for topic, key, value in records]


def drive(
    stage_name: str, records: list[tuple[str, bytes | None, bytes | None]], profile: Path | None
) -> dict[str, Any]:
    stage, handler, sent = _build(stage_name)
    events = _events(records)
    batch = stage_module.BATCH_MAX

    async def go() -> None:
        for i in range(0, len(events), batch):
            await stage._handle_batch(handler, events[i : i + batch])

    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    asyncio.run(go())
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "records": len(events),
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "us_per_record_cpu": round(cpu / max(1, len(events)) * 1e6, 1),
        "records_per_s_wall": round(len(events) / wall, 1) if wall else None,
        "processed": stage._counters.processed,
        "dead_letters": stage._counters.dead_letters,
        "published": len(sent),
        "sent": sent,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--stages", default="ingest,profiler,bom,correlator,enforcer")
    parser.add_argument("--profile", type=Path, help="cProfile the (single) stage into this file")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]

    home = Path(tempfile.mkdtemp(prefix="runward-inproc-"))
    db = f"sqlite:///{home / 'runward.db'}"
    os.environ.update(RUNWARD_HOME=str(home), RUNWARD_DB=db, RUNWARD_OBSERVATION_WINDOW_S="5")
    upgrade(db)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    raw = _json(flood.raw_mix(args.events, args.deployments, 1, start))
    results: dict[str, Any] = {}
    enriched: list[tuple[str, bytes | None, bytes | None]] = []
    published: dict[str, list[tuple[str, bytes, bytes]]] = {}
    for name in ["ingest", "profiler", "bom", "correlator", "enforcer"]:
        if name not in stages and not (name == "ingest" and {"profiler", "bom"} & set(stages)):
            continue
        if name == "ingest":
            records = raw
        elif name in ("profiler", "bom"):
            records = enriched
        elif name == "correlator":
            records = _json(flood.signal_mix(args.events, args.deployments, 2, start))
            records += [(t, k, v) for t, k, v in published.get("profiler", []) if t == SIGNALS.name]
        else:
            records = _json(flood.apd_mix(args.events, args.deployments, start))
            records += [(t, k, v) for t, k, v in published.get("profiler", []) if t == APD.name]
            records += [(t, k, v) for t, k, v in published.get("correlator", []) if t == ATTACK_STORIES.name]
        result = drive(name, records, args.profile if name in stages else None)
        published[name] = result.pop("sent")
        if name == "ingest":
            enriched = [(t, k, v) for t, k, v in published[name] if t == ENRICHED.name]
        if name in stages:
            results[name] = result
            print(
                f"{name:<11} {result['records']:>7} records  {result['us_per_record_cpu']:>8.1f} µs CPU/record  "
                f"{result['records_per_s_wall']:>10,.0f} records/s  published {result['published']:>6}  "
                f"dead-lettered {result['dead_letters']}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
