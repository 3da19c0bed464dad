"""Publishing raw records with delivery confirmation, for request/response sources.

The OTLP receiver must only answer 200 once spans are on the broker (the exporter retries
otherwise), so every send returns a future resolved by the delivery report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel

from runward.core.config import Settings
from runward.core.kafka import DeliveryError, RecordProducer
from runward.core.topics import Topic

__all__ = ["DeliveryError", "RawPublisher"]

TUNING: dict[str, Any] = {
    "linger.ms": 5,
    # Bounded so a missing broker becomes a retryable answer, not a hung request.
    "message.timeout.ms": 15_000,
    "queue.buffering.max.messages": 100_000,
}


class RawPublisher:
    """The shared producer, served by its own poll thread."""

    def __init__(self, kafka: Settings | str, client_id: str, overrides: dict[str, Any] | None = None) -> None:
        self._producer = RecordProducer(kafka, client_id, {**TUNING, **(overrides or {})}, poll_thread=True)

    def send(self, topic: Topic[Any], key: str, record: BaseModel) -> Future[None]:
        return self._producer.deliver(topic, key, record)

    async def send_all(
        self, items: Iterable[tuple[Topic[Any], str, BaseModel]], timeout_s: float = 20.0
    ) -> list[str | None]:
        """Send and wait for every delivery; one error string (or None) per item, in order."""
        futures = [asyncio.wrap_future(self.send(topic, key, record)) for topic, key, record in items]
        if not futures:
            return []
        done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout_s)
        return [None if result is None else str(result) for result in done]

    def close(self, timeout_s: float = 10.0) -> int:
        """Flush and stop; return how many records were still undelivered."""
        return self._producer.close(timeout_s)
