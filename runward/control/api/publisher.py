"""Publishing the API's own records (promotion decisions) to Kafka."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from pydantic import BaseModel

from runward.core.config import Settings
from runward.core.kafka import DeliveryError, RecordProducer
from runward.core.topics import Topic


class PublishError(RuntimeError):
    """The record was not confirmed by Kafka; the message says why and what to do."""


class Publisher(Protocol):
    def publish(self, topic: Topic[Any], key: str, record: BaseModel) -> None:
        """Publish and wait for the broker's acknowledgement; raise PublishError otherwise."""

    def close(self) -> None: ...


class KafkaPublisher:
    """The shared idempotent producer, created on first use.

    The request waits for the broker's acknowledgement: a 202 must mean the enforcer will
    see the decision. The delivery timeout is shorter than the wait, so a request that
    fails has its message expired rather than delivered later behind the caller's back.
    """

    def __init__(self, kafka: Settings | str, timeout_s: float = 10.0) -> None:
        self.kafka = kafka
        self.timeout_s = timeout_s
        self._producer: RecordProducer | None = None
        # Promotions are rare; one at a time keeps delivery results unambiguous.
        self._lock = threading.Lock()

    def _get_producer(self) -> RecordProducer:
        if self._producer is None:
            self._producer = RecordProducer(
                self.kafka,
                "runward-api",
                {
                    "message.timeout.ms": max(1000, int(self.timeout_s * 1000) - 500),
                    "socket.connection.setup.timeout.ms": max(1000, int(self.timeout_s * 1000)),
                },
            )
        return self._producer

    def publish(self, topic: Topic[Any], key: str, record: BaseModel) -> None:
        with self._lock:
            try:
                self._get_producer().publish(topic, key, record, self.timeout_s)
            except DeliveryError as exc:
                raise PublishError(str(exc)) from None

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(self.timeout_s)
                self._producer = None
