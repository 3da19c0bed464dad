"""Bytes <-> records, with reasons a human can act on when input is bad."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from runward.core.contracts import Record
from runward.core.topics import Topic

R = TypeVar("R", bound=BaseModel)


class RejectedRecord(ValueError):
    """A record a stage must dead-letter; the message says what is wrong and what to do."""


def encode(record: BaseModel) -> bytes:
    return record.model_dump_json().encode()


def encode_for(topic: Topic[R], record: R) -> bytes:
    """The record's bytes for `topic`; WrongRecord (a TypeError) if it is not the topic's record type."""
    return encode(topic.check(record))


def decode(topic: Topic[R], payload: bytes | None) -> R:
    if payload is None:
        raise RejectedRecord(f"empty record on {topic.name}: a producer sent a tombstone or no value")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RejectedRecord(f"not valid JSON on {topic.name}: {exc}") from None
    if not isinstance(data, dict):
        raise RejectedRecord(f"expected a JSON object on {topic.name}, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version not in Record.SUPPORTED_VERSIONS:
        raise RejectedRecord(
            f"unknown schema_version {version!r} on {topic.name} "
            f"(this stage supports {sorted(Record.SUPPORTED_VERSIONS)}); upgrade the consumer or fix the producer"
        )
    try:
        return topic.adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<record>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise RejectedRecord(f"does not match {topic.name} contract: {problems}") from None
