"""Publishing raw records with delivery confirmation, for request/response sources.

The OTLP receiver must only answer 200 once spans are on the broker (the exporter retries
otherwise), so every send returns a future resolved by the delivery report.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from pydantic import BaseModel

from runward.core.codec import encode_for
from runward.core.kafka import producer_config as kafka_producer_config
from runward.core.topics import Topic

log = logging.getLogger(__name__)


def producer_config(bootstrap: str, client_id: str) -> dict[str, Any]:
    return kafka_producer_config(
        bootstrap,
        client_id,
        {
            "linger.ms": 5,
            # Bounded so a missing broker becomes a retryable answer, not a hung request.
            "message.timeout.ms": 15_000,
            "queue.buffering.max.messages": 100_000,
        },
    )


class DeliveryError(RuntimeError):
    pass


class RawPublisher:
    """A confluent-kafka producer served by its own poll thread."""

    def __init__(self, bootstrap: str, client_id: str, overrides: dict[str, Any] | None = None) -> None:
        config = producer_config(bootstrap, client_id)
        config.update(overrides or {})
        config["error_cb"] = lambda err: log.warning("kafka: %s", err)
        self._producer: Producer | None = Producer(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set() and (producer := self._producer) is not None:
            producer.poll(0.1)

    def send(self, topic: Topic[Any], key: str, record: BaseModel) -> Future[None]:
        future: Future[None] = Future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(DeliveryError(f"{message.topic()}: {error.str()}"))

        if self._producer is None:
            future.set_exception(DeliveryError("publisher is closed"))
            return future
        try:
            self._producer.produce(topic.name, key=key.encode(), value=encode_for(topic, record), on_delivery=delivered)
        except BufferError as exc:
            future.set_exception(DeliveryError(f"local producer queue is full: {exc}"))
        return future

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
        producer, remaining = self._producer, 0
        if producer is not None:
            remaining = int(producer.flush(timeout_s))
        self._stop.set()
        self._thread.join(timeout=2)
        self._producer = None  # librdkafka's threads end with the last reference
        return remaining
