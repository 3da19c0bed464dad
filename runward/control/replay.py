"""Publish recorded raw events (JSON lines) so the pipeline runs without a sensor.

Each line is `{"topic": ..., "key": ..., "value": {...}}` for one of the raw topics, or
`{"barrier": true}`: wait until ingest has handled everything sent so far, because Kafka
orders records within a partition, not across topics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runward.control.wait import WaitTimeout, wait_until
from runward.core.codec import RejectedRecord, decode, encode
from runward.core.config import Settings
from runward.core.kafka import DeliveryError, RecordProducer
from runward.core.topics import BY_NAME, RAW_K8S, RAW_LLM, RAW_SENSOR

RAW_TOPICS = {RAW_SENSOR.name, RAW_LLM.name, RAW_K8S.name}
_TIME_FIELDS = ("ts", "requestReceivedTimestamp", "stageTimestamp")


class ReplayError(ValueError):
    pass


@dataclass
class Line:
    number: int
    topic: str | None
    key: str | None
    value: dict[str, Any] | None
    barrier: bool = False


def read_lines(path: Path) -> Iterator[Line]:
    if not path.exists():
        raise ReplayError(f"{path}: no such file; give a JSON-lines file of raw records")
    with path.open() as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                item = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ReplayError(f"{path}:{number}: not JSON ({exc})") from None
            if item.get("barrier"):
                yield Line(number, None, None, None, barrier=True)
                continue
            topic = item.get("topic")
            if topic not in RAW_TOPICS:
                raise ReplayError(f"{path}:{number}: topic {topic!r} is not a raw topic ({sorted(RAW_TOPICS)})")
            if not isinstance(item.get("value"), dict):
                raise ReplayError(f"{path}:{number}: 'value' must be a JSON object")
            yield Line(number, topic, item.get("key"), item["value"])


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _walk_times(value: Any, fn: Callable[[datetime], datetime | None]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if key in _TIME_FIELDS and isinstance(inner, str):
                shifted = fn(_parse(inner))
                out[key] = shifted.isoformat() if shifted else inner
            else:
                out[key] = _walk_times(inner, fn)
        return out
    if isinstance(value, list):
        return [_walk_times(v, fn) for v in value]
    return value


def rebase_offset(lines: list[Line], now: datetime) -> timedelta:
    """Shift recorded time so the scenario's last event happened just now."""
    latest: list[datetime] = []

    def seen(t: datetime) -> None:
        latest.append(t)

    for line in lines:
        _walk_times(line.value, seen)
    return now - max(latest) if latest else timedelta(0)


def replay(
    path: Path,
    kafka: Settings | str,
    *,
    rebase: bool = True,
    wait_ingested: Callable[[int], bool] | None = None,
    progress: Callable[[str], None] = print,
    advance: Callable[[int, int], None] | None = None,
) -> int:
    """Publish every record of the file, each checked against its topic's contract first: a
    recording that does not match is refused with its line, before anything is sent. `progress`
    gets notes, `advance(sent, total)` drives a progress bar."""
    lines = list(read_lines(path))
    encoded = _encode(path, lines, rebase)
    producer = RecordProducer(kafka, "runward-replay", {"linger.ms": 5, "compression.type": "lz4"})
    failures: list[DeliveryError] = []

    def delivered(err: DeliveryError | None) -> None:
        if err is not None:
            failures.append(err)

    total = sum(1 for line in lines if not line.barrier)
    sent = 0
    try:
        for line, payload in encoded:
            if payload is None:
                if producer.flush(30) > 0:
                    raise ReplayError("broker did not acknowledge records within 30 s")
                if wait_ingested and not wait_ingested(sent):
                    progress(f"  barrier at line {line.number}: ingest did not catch up; continuing")
                continue
            assert line.topic is not None
            producer.send_encoded(BY_NAME[line.topic], line.key, payload, delivered)
            producer.poll(0)
            sent += 1
            if advance is not None:
                advance(sent, total)
            elif sent % 50 == 0:
                progress(f"  replayed {sent}/{total} records")
        if producer.flush(30) > 0:
            raise ReplayError("broker did not acknowledge every record within 30 s")
    finally:
        producer.close(0)
    if failures:
        raise ReplayError(f"{len(failures)} records were not delivered, first: {failures[0]}")
    return sent


def _encode(path: Path, lines: list[Line], rebase: bool) -> list[tuple[Line, bytes | None]]:
    """Each line's record, time-shifted and through the codec; None for a barrier."""
    shift = rebase_offset(lines, datetime.now(timezone.utc)) if rebase else timedelta(0)
    encoded: list[tuple[Line, bytes | None]] = []
    for line in lines:
        if line.barrier:
            encoded.append((line, None))
            continue
        assert line.topic is not None and line.value is not None
        value = _walk_times(line.value, lambda t: t + shift) if rebase else line.value
        try:
            record = decode(BY_NAME[line.topic], json.dumps(value).encode())
        except RejectedRecord as exc:
            raise ReplayError(f"{path}:{line.number}: {exc}") from None
        encoded.append((line, encode(record)))
    return encoded


def store_barrier(db_url: str, timeout_s: float = 60) -> Callable[[int], bool]:
    """A barrier that reads ingest's handled count (processed + dead letters) from the store."""
    from runward.core.store import Store

    store = Store(db_url)

    def handled() -> int:
        for row in store.stage_health():
            if row["stage"] == "ingest":
                return int(row["processed"]) + int(row["dead_letters"])
        return 0

    baseline = handled()

    def wait(sent: int) -> bool:
        try:
            return wait_until(
                lambda: handled() - baseline >= sent,
                timeout=timeout_s,
                interval=0.5,
                failure="ingest did not catch up",
            )
        except WaitTimeout:
            return False

    return wait
