"""The used side from the pipeline itself: every audit event on runward.raw.k8s so far."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from runward.core.topics import RAW_K8S

IDLE_S = 2.0


def audit_events_from_kafka(bootstrap: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Read raw.k8s from the start up to its current end; return the audit events in it.

    The topic is read by assignment, not by a consumer group: a report must not move
    ingest's offsets or anyone else's.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"runward-reconcile-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(RAW_K8S.name, timeout=10).topics.get(RAW_K8S.name)
        if metadata is None or metadata.error is not None:
            raise RuntimeError(f"topic {RAW_K8S.name} is not on {bootstrap}; is Runward up?")
        # Read until the topic has been quiet for IDLE_S: high watermarks are not trusted here,
        # the embedded broker (Tansu) reports 1 for partitions holding a whole batch.
        consumer.assign([TopicPartition(RAW_K8S.name, p, 0) for p in metadata.partitions])
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        last_message = time.monotonic()
        while time.monotonic() - last_message < IDLE_S:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{RAW_K8S.name} kept growing for {timeout_s:.0f} s; read a file instead")
            msg = consumer.poll(0.2)
            if msg is None or msg.error() or msg.value() is None:
                continue
            last_message = time.monotonic()
            try:
                record = json.loads(msg.value() or b"")
            except (TypeError, ValueError):
                continue  # ingest dead-letters it; the report reads only what ingest accepted
            if isinstance(record, dict) and record.get("source") == "k8s_audit":
                events.append(record["event"])
        return events
    finally:
        consumer.close()
