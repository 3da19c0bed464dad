"""Settings every Runward Kafka producer shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def producer_config(bootstrap: str, client_id: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Idempotent (acks=all, ordered retries) and keyed like the Java client and Faust (murmur2),
    so every record of an agent lands on the partition its Faust tables are co-partitioned with."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
    }
    config.update(extra or {})
    return config
