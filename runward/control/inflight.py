"""What a broker restart loses in flight, counted and reported.

The embedded broker keeps its topics in memory: when it exits (or any broker comes back empty),
the records that a stage had not read yet are gone. The store outlives it, so what the stages
learnt is rebuilt from there; what was in flight is not. The supervisor therefore takes, every
few seconds while the broker is up, each stage's position on each of its input partitions: the
partition's end offset minus the stage's committed offset. When the broker goes (the embedded one
exits, or end offsets go backwards: an empty broker took its place), the last such count is what
was lost; it is logged, printed and added to each stage's `lost_in_flight` in the store, which
`runward status` and GET /v1/stages show.

The count is an estimate on both sides, and says so: records produced after the last snapshot
are missing from it, and records a stage had handled but not yet committed (Faust commits every
few seconds) are in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from runward.core.config import Settings
from runward.core.kafka import bootstrap_reachable, client_config
from runward.core.topics import (
    APD,
    ATTACK_STORIES,
    DECLARED,
    ENRICHED,
    PROMOTIONS,
    RAW_K8S,
    RAW_LLM,
    RAW_SENSOR,
    SIGNALS,
    Topic,
)

log = logging.getLogger(__name__)
_rdkafka_log = logging.getLogger("runward.rdkafka")

# What each stage reads (services/<stage>/app.py); its consumer group is `runward-<stage>`.
STAGE_INPUTS: dict[str, tuple[Topic[Any], ...]] = {
    "ingest": (RAW_SENSOR, RAW_LLM, RAW_K8S),
    "bom": (ENRICHED, DECLARED),
    "profiler": (ENRICHED,),
    "correlator": (SIGNALS,),
    "enforcer": (APD, PROMOTIONS, ATTACK_STORIES),
}
SNAPSHOT_EVERY_S = 2.0

Partition = tuple[str, int]


@dataclass
class Snapshot:
    """End offsets of the input partitions and each stage's committed offsets on them."""

    ends: dict[Partition, int]
    committed: dict[str, dict[Partition, int]] = field(default_factory=dict)

    def in_flight(self) -> dict[str, int]:
        """Per stage: records on its input partitions it had not committed (not yet read, or read
        and not yet committed). A partition the stage never committed on counts from offset 0."""
        counts: dict[str, int] = {}
        for stage, inputs in STAGE_INPUTS.items():
            names = {t.name for t in inputs}
            done = self.committed.get(stage, {})
            counts[stage] = sum(max(0, end - done.get(tp, 0)) for tp, end in self.ends.items() if tp[0] in names)
        return counts

    def went_back(self, later: Snapshot) -> bool:
        """Whether `later` is of a broker that lost the log: an end offset went backwards (a
        Kafka log's end offset never does)."""
        return any(later.ends.get(tp, end) < end for tp, end in self.ends.items())


def true_ends(reader: Consumer, reported: dict[Partition, int], timeout_s: float) -> dict[Partition, int]:
    """The end offsets, read rather than asked for: the embedded broker (Tansu 0.6) reports the
    first offset of a partition's last produce batch plus one, so the rest of that batch is read
    to find where the partition really ends."""
    ends = dict(reported)
    behind = {tp for tp, end in reported.items() if end > 0}
    if not behind:
        return ends
    reader.assign([TopicPartition(topic, p, ends[(topic, p)] - 1) for topic, p in behind])
    deadline = time.monotonic() + timeout_s
    try:
        while behind and time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is None:
                continue
            tp = (str(message.topic()), int(message.partition() or 0))
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    behind.discard(tp)
                continue
            ends[tp] = max(ends[tp], int(message.offset() or 0) + 1)
    finally:
        reader.unassign()
    return ends


def take_snapshot(admin: AdminClient, reader: Consumer, partitions: int, timeout_s: float = 5.0) -> Snapshot:
    """Ask the broker for the end offsets of every stage input and each stage's committed offsets."""
    names = sorted({t.name for inputs in STAGE_INPUTS.values() for t in inputs})
    wanted = {TopicPartition(name, p): OffsetSpec.latest() for name in names for p in range(partitions)}
    reported: dict[Partition, int] = {}
    for tp, future in admin.list_offsets(wanted, request_timeout=timeout_s).items():
        reported[(tp.topic, tp.partition)] = future.result(timeout=timeout_s).offset
    ends = true_ends(reader, reported, timeout_s)
    committed: dict[str, dict[Partition, int]] = {}
    requests = [ConsumerGroupTopicPartitions(f"runward-{stage}") for stage in STAGE_INPUTS]
    for stage, request in zip(STAGE_INPUTS, requests, strict=True):
        # One group per call: librdkafka accepts a single group in a list-offsets request.
        for future in admin.list_consumer_group_offsets([request], request_timeout=timeout_s).values():
            result = future.result(timeout=timeout_s)
            committed[stage] = {
                (tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0
            }
    return Snapshot(ends, committed)


class InFlightWatch:
    """Keeps the last snapshot while the broker is up; says what was lost when it goes."""

    def __init__(
        self,
        config: Settings,
        record: Callable[[Mapping[str, int]], None],
        say: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.record = record
        self.say = say
        self.clock = clock
        self.last: Snapshot | None = None
        self._taken_at = float("-inf")
        self._clients: tuple[AdminClient, Consumer] | None = None
        self.lost_total = 0

    def _client(self) -> tuple[AdminClient, Consumer]:
        if self._clients is None:
            base = {**client_config(self.config, "runward-inflight"), "logger": _rdkafka_log, "socket.timeout.ms": 5000}
            # The reader only reads the tail of partitions it is assigned: no group, no commits.
            reader = Consumer(
                {**base, "group.id": "runward-inflight", "enable.auto.commit": False, "enable.partition.eof": True}
            )
            self._clients = (AdminClient(base), reader)
        return self._clients

    def close(self) -> None:
        if self._clients is not None:
            self._clients[1].close()
            self._clients = None

    def tick(self) -> None:
        """Take a snapshot if one is due; if the broker came back empty, report what was lost."""
        now = self.clock()
        if now - self._taken_at < SNAPSHOT_EVERY_S:
            return
        self._taken_at = now
        if not bootstrap_reachable(self.config.kafka, 0.3):  # away for now: keep the last snapshot
            return
        try:
            snapshot = take_snapshot(*self._client(), self.config.partitions)
        except (KafkaException, OSError, ValueError) as exc:  # broker away for a moment: keep the last one
            log.info("in-flight snapshot failed: %s", exc)
            self.close()  # a client that knew the old broker may keep asking it: start afresh
            return
        if self.last is not None and self.last.went_back(snapshot):
            self.broker_lost("the broker came back without its log")
        self.last = snapshot

    def broker_lost(self, why: str) -> dict[str, int]:
        """Report the last snapshot's in-flight records as lost (once) and forget it."""
        if self.last is None:
            return {}
        lost, self.last = self.last.in_flight(), None
        total = sum(lost.values())
        self.lost_total += total
        detail = ", ".join(f"{stage} {n}" for stage, n in lost.items() if n) or "none"
        message = (
            f"{why}: about {total} records in flight were lost ({detail}); counted from the offsets "
            f"{SNAPSHOT_EVERY_S:.0f} s before at most (see runward status)"
        )
        log.warning("%s", message)
        self.say(f"  broker     {message}")
        try:
            self.record(lost)
        except Exception:  # the count is printed and logged even if the store is away
            log.exception("could not record the in-flight loss in the store")
        return lost
