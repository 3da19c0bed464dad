"""What the Falco and Tetragon translators share: attribution, ids, time, batches."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runward.core.contracts import RawSensorEvent

# Both the pod-template-hash and the pod suffix are drawn from Kubernetes' SafeEncodeString
# alphabet, so a pod name ending in two such segments is a Deployment's (via its ReplicaSet).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_DEPLOYMENT_POD = re.compile(rf"^(?P<deployment>[a-z0-9][-a-z0-9]*?)-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}$")


class UnsupportedEvent(ValueError):
    """A well-formed event that has no RawSensorEvent equivalent; the message says which."""


def deployment_from_pod(pod: str | None) -> str | None:
    match = _DEPLOYMENT_POD.match(pod or "")
    return match.group("deployment") if match else None


def stable_id(prefix: str, item: dict[str, Any]) -> str:
    """Idempotent ids: the same alert delivered twice is the same record."""
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
    return f"{prefix}:{digest[:24]}"


def parse_time(value: Any) -> datetime:
    """RFC 3339 with nanoseconds (both tools emit them) or integer nanoseconds since the epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1e9, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"event time {value!r} ns since the epoch is out of range") from None
    if not isinstance(value, str) or not value:
        raise ValueError("event has no time")
    text = value.replace("Z", "+00:00")
    # Python parses at most microseconds: trim the fraction to 6 digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def split_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes in a command line: keep the words
        return text.split()


def sensor_key(event: RawSensorEvent) -> str:
    who = event.attribution
    if who.deployment:
        return who.deployment
    return f"{who.node or 'unknown'}:{who.container_id or who.pod_uid or 'unknown'}"


@dataclass
class Batch:
    events: list[RawSensorEvent] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def translate_batch(items: Iterable[Any], translate: Callable[[dict[str, Any]], RawSensorEvent]) -> Batch:
    batch = Batch()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            batch.rejected.append((index, f"expected a JSON object, got {type(item).__name__}"))
            continue
        try:
            batch.events.append(translate(item))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            # A field of the wrong JSON type deep in an event: that event is rejected with the
            # reason, the rest of the batch goes on (never a 500 for the sender).
            reason = str(exc) if isinstance(exc, ValueError) else f"missing or malformed field ({exc})"
            batch.rejected.append((index, reason))
        except RecursionError:
            batch.rejected.append((index, "event nested too deeply"))
    return batch


def parse_json_items(body: bytes) -> list[Any]:
    """A JSON object, a JSON array, or JSON lines (Tetragon's export file, shippers' batches),
    with lone surrogates (valid JSON escapes, invalid text) replaced so every record can be encoded."""
    text = body.decode("utf-8")
    stripped = text.strip()
    if not stripped:
        return []
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return [sanitize(json.loads(line)) for line in stripped.splitlines() if line.strip()]
    data = sanitize(data)
    return data if isinstance(data, list) else [data]


def sanitize(value: Any) -> Any:
    """The value with every string made encodable: a lone surrogate becomes U+FFFD."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return value
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    if isinstance(value, dict):
        return {sanitize(k): sanitize(v) for k, v in value.items()}
    return value
