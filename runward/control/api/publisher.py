"""Publishing the API's own records (promotion decisions) to Kafka."""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer
from pydantic import BaseModel

from runward.core.codec import encode_for
from runward.core.kafka import producer_config
from runward.core.topics import Topic

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The record was not confirmed by Kafka; the message says why and what to do."""


class Publisher(Protocol):
    def publish(self, topic: Topic[Any], key: str, record: BaseModel) -> None:
        """Publish and wait for the broker's acknowledgement; raise PublishError otherwise."""

    def close(self) -> None: ...


class KafkaPublisher:
    """An idempotent confluent-kafka producer, created on first use.

    The request waits for the broker's acknowledgement: a 202 must mean the enforcer will
    see the decision. The delivery timeout is shorter than the wait, so a request that
    fails has its message expired rather than delivered later behind the caller's back.
    """

    def __init__(self, bootstrap: str, timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._producer: Producer | None = None
        # Promotions are rare; one at a time keeps delivery results unambiguous.
        self._lock = threading.Lock()

    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                producer_config(
                    self.bootstrap,
                    "runward-api",
                    {
                        "message.timeout.ms": max(1000, int(self.timeout_s * 1000) - 500),
                        "socket.connection.setup.timeout.ms": max(1000, int(self.timeout_s * 1000)),
                    },
                )
            )
        return self._producer

    def publish(self, topic: Topic[Any], key: str, record: BaseModel) -> None:
        outcome: dict[str, Any] = {}

        def delivered(err: KafkaError | None, msg: Message) -> None:
            outcome["error"] = err
            outcome["done"] = True

        value = encode_for(topic, record)  # a wrong record is a bug here, not a Kafka failure
        with self._lock:
            try:
                producer = self._get_producer()
                producer.produce(topic.name, key=key.encode(), value=value, on_delivery=delivered)
                remaining = producer.flush(self.timeout_s)
            except Exception as exc:  # BufferError, KafkaException: the producer state is suspect
                self._discard()
                raise PublishError(f"could not hand the record to the Kafka producer: {exc}") from None
            if remaining or not outcome.get("done"):
                self._discard()
                raise PublishError(
                    f"Kafka at {self.bootstrap} did not acknowledge the record on {topic.name} "
                    f"within {self.timeout_s:g} s; it was not published, retry when Kafka is reachable"
                )
            if outcome["error"] is not None:
                self._discard()
                raise PublishError(
                    f"Kafka at {self.bootstrap} did not take the record on {topic.name} "
                    f"({outcome['error'].str()}); it was not published, retry when Kafka is reachable"
                )

    def _discard(self) -> None:
        # A fresh producer after any failure: an idempotent producer that hit a fatal
        # error refuses further sends, and queued leftovers must not be sent later.
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.purge()
                producer.flush(0)
            except Exception:  # best effort on a producer we are throwing away
                log.debug("purging a discarded producer failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self.timeout_s)
                self._producer = None
