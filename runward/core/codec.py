"""Bytes <-> records, with reasons a human can act on when input is bad."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runward.core.contracts import Record
from runward.core.topics import Topic

R = TypeVar("R", bound=BaseModel)


class RejectedRecord(ValueError):
    """A record a stage must dead-letter; the message says what is wrong and what to do."""


# A JSON escape of a UTF-16 surrogate: the only way a lone surrogate gets into a decoded string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def sanitise(value: Any) -> Any:
    """`value` with every lone UTF-16 surrogate in its strings replaced by U+FFFD.

    JSON may escape one (`"\\ud800"`); Python decodes it, but no UTF-8 encoder, JSON
    serialiser or PostgreSQL takes it back out.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {sanitise(k): sanitise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitise(v) for v in value]
    return value


def to_json(record: BaseModel) -> str:
    """The record as JSON text, lone surrogates replaced by U+FFFD: the data of
    `sanitise(record.model_dump(mode="json"))`, serialised by pydantic in one pass."""
    try:
        return record.model_dump_json()
    except ValueError:  # a lone surrogate somewhere in the record's strings: the slow way, only then
        return json.dumps(sanitise(record.model_dump(mode="json")), ensure_ascii=False)


def encode(record: BaseModel) -> bytes:
    return to_json(record).encode()


def encode_for(topic: Topic[R], record: R) -> bytes:
    """The record's bytes for `topic`; WrongRecord (a TypeError) if it is not the topic's record type."""
    return encode(topic.check(record))


def decode(topic: Topic[R], payload: bytes | None) -> R:
    if payload is None:
        raise RejectedRecord(f"empty record on {topic.name}: a producer sent a tombstone or no value")
    if not _SURROGATE_ESCAPE.search(payload):
        # The common case: pydantic parses the bytes itself, several times faster than json +
        # validate_python. Anything it refuses goes the slow way for a precise reason.
        try:
            return topic.adapter.validate_json(payload)
        except ValidationError:
            pass
    try:
        data = sanitise(json.loads(payload))
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
