"""Publishing K8sObjectEvents to runward.raw.k8s, keyed by `namespace/name`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import KafkaError, Message, Producer

from runward.core.codec import encode
from runward.core.contracts import K8sObjectEvent
from runward.core.kafka import producer_config
from runward.core.topics import RAW_K8S

log = logging.getLogger(__name__)


class Sink(Protocol):
    def publish(self, key: str, record: K8sObjectEvent, on_failed: Callable[[], None]) -> None: ...
    def close(self, timeout_s: float = 10.0) -> int: ...


class KafkaSink:
    """An idempotent producer (ordered per key) with its own poll thread.

    A record the broker never acknowledged calls `on_failed`: the watch that published it then
    relists from scratch, since its resume point has already moved past that record."""

    def __init__(self, bootstrap: str, client_id: str = "runward-kubewatch", message_timeout_ms: int = 120_000) -> None:
        config = producer_config(bootstrap, client_id, {"linger.ms": 20, "message.timeout.ms": message_timeout_ms})
        config["error_cb"] = lambda err: log.warning("kafka: %s", err)
        self._producer = Producer(config)
        self._stop = threading.Event()
        self.failed = 0
        self._thread = threading.Thread(target=self._poll, name="kubewatch-kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def publish(self, key: str, record: K8sObjectEvent, on_failed: Callable[[], None]) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self.failed += 1
                log.error("kubewatch: %s key %s not delivered: %s; relisting", RAW_K8S.name, key, error.str())
                on_failed()

        value = encode(record)
        while True:
            try:
                self._producer.produce(RAW_K8S.name, key=key.encode(), value=value, on_delivery=delivered)
                return
            except BufferError:
                # The local queue is full (broker down or slow): hold the watch rather than drop events.
                self._producer.poll(1.0)

    def close(self, timeout_s: float = 10.0) -> int:
        remaining = int(self._producer.flush(timeout_s))
        self._stop.set()
        self._thread.join(timeout=2)
        return remaining
