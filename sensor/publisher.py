"""Kafka adapter: publish RawSensorEvents to runward.raw.sensor through the shared producer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError

from runward.core.config import Settings
from runward.core.contracts import RawSensorEvent
from runward.core.kafka import DeliveryError, QueueFull, RecordProducer
from runward.core.topics import RAW_SENSOR, Topic
from sensor.metrics import Metrics

log = logging.getLogger(__name__)

TUNING: dict[str, Any] = {
    # Batching bounded well under the 1 s end-to-end target.
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "compression.type": "lz4",
    # A bounded queue: when the broker is away the sensor drops (and counts) rather
    # than growing without limit on the node.
    "queue.buffering.max.messages": 100_000,
    "queue.buffering.max.kbytes": 65_536,
    "message.timeout.ms": 30_000,
}


class KafkaPublisher:
    def __init__(
        self,
        kafka: Settings | str,
        metrics: Metrics,
        client_id: str = "runward-sensor",
        topic: Topic = RAW_SENSOR,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.metrics = metrics
        self._producer = RecordProducer(kafka, client_id, {**TUNING, **(overrides or {})}, on_error=self._on_error)

    def check(self, timeout_s: float = 5.0) -> str | None:
        """None if the broker answers and has the topic, else what is wrong."""
        return self._producer.check(self.topic, timeout_s)

    def _on_error(self, error: KafkaError) -> None:
        log.warning("kafka: %s", error)
        self.metrics.inc("runward_sensor_producer_errors_total")

    def _on_delivery(self, error: DeliveryError | None) -> None:
        if error is None:
            self.metrics.inc("runward_sensor_producer_delivered_total")
        else:
            self.metrics.inc("runward_sensor_producer_delivery_failed_total")
            log.warning("event not delivered: %s", error)

    def publish(self, key: str, event: RawSensorEvent) -> bool:
        """Queue the event; False if the local queue is full (the event is dropped)."""
        try:
            self._producer.send(self.topic, key, event, self._on_delivery)
        except QueueFull:
            self.metrics.inc("runward_sensor_producer_queue_full_total")
            return False
        return True

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait for queued events; return how many are still undelivered."""
        return self._producer.flush(timeout_s)
