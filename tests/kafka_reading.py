"""Reading a real topic from the test broker through the project's one topic reader.

Every record is decoded with the shared codec; a test reader never dead-letters (the tests
count the stages' dead letters)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from runward.core.kafka import Received, read_topic
from runward.core.topics import BY_NAME


def read_messages(
    bootstrap: str,
    topic: str,
    want: int,
    match: Callable[[Received[Any]], bool] = lambda m: True,
    timeout: float = 20.0,
) -> list[Received[Any]]:
    """The records on `topic` that `match`, once `want` arrived or at the timeout (fewer then)."""
    read = read_topic(
        bootstrap, BY_NAME[topic], reader="test", match=match, want=want, timeout_s=timeout, dead_letter=False
    )
    return read.records


def read_values(bootstrap: str, topic: str, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every JSON value on `topic`, up to `want`."""
    return [json.loads(m.value) for m in read_messages(bootstrap, topic, want, timeout=timeout)]


def read_records(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    want: int,
    timeout: float = 20.0,
) -> list[tuple[str | None, dict[str, Any]]]:
    """(key, value) of the records on `topic` whose JSON value `match`es, waiting until `want` arrived."""
    messages = read_messages(bootstrap, topic, want, lambda m: bool(match(json.loads(m.value))), timeout)
    return [(m.key, json.loads(m.value)) for m in messages]
