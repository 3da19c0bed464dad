"""Reading a real topic from the test broker: assign() every partition from offset 0.

assign() rather than subscribe(): a consumer group's rebalance is slow on the embedded broker,
and a test wants what is on the topic, not a share of it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition


def read_messages(
    bootstrap: str,
    topic: str,
    want: int,
    match: Callable[[Message], bool] = lambda m: True,
    timeout: float = 20.0,
    partitions: int = 4,
) -> list[Message]:
    """The messages on `topic` that `match`, once `want` arrived or at the timeout (fewer then)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{time.time_ns()}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < want:
            msg = consumer.poll(0.3)
            if msg is not None and not msg.error() and match(msg):
                found.append(msg)
    finally:
        consumer.close()
    return found


def read_values(bootstrap: str, topic: str, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every JSON value on `topic`, up to `want`."""
    return [json.loads(m.value()) for m in read_messages(bootstrap, topic, want, timeout=timeout)]


def read_records(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    want: int,
    timeout: float = 20.0,
    partitions: int = 4,
) -> list[tuple[str | None, dict[str, Any]]]:
    """(key, value) of the records on `topic` whose JSON value `match`es, waiting until `want` arrived."""
    messages = read_messages(bootstrap, topic, want, lambda m: bool(match(json.loads(m.value()))), timeout, partitions)
    return [((m.key() or b"").decode() or None, json.loads(m.value())) for m in messages]
