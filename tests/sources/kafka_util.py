"""Reading a real topic from the test broker: assign all partitions from offset 0."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def read_records(bootstrap: str, topic: str, match: Callable[[dict[str, Any]], bool], want: int,
                 timeout: float = 20.0, partitions: int = 4) -> list[tuple[str | None, dict[str, Any]]]:
    """(key, value) of the records on `topic` that `match`, waiting until `want` arrived."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{time.time_ns()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: list[tuple[str | None, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < want:
            msg = consumer.poll(0.3)
            if msg is None or msg.error():
                continue
            value = json.loads(msg.value())
            if match(value):
                key = msg.key()
                found.append((key.decode() if key else None, value))
    finally:
        consumer.close()
    return found
