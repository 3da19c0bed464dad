"""Kafka adapter: publish RawSensorEvents to runward.raw.sensor with confluent-kafka."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from runward.core.codec import encode
from runward.core.contracts import RawSensorEvent
from runward.core.kafka import producer_config as kafka_producer_config
from runward.core.topics import RAW_SENSOR
from sensor.metrics import Metrics

log = logging.getLogger(__name__)


def producer_config(bootstrap: str, client_id: str) -> dict[str, Any]:
    return kafka_producer_config(
        bootstrap,
        client_id,
        {
            # Batching bounded well under the 1 s end-to-end target.
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            # A bounded queue: when the broker is away the sensor drops (and counts) rather
            # than growing without limit on the node.
            "queue.buffering.max.messages": 100_000,
            "queue.buffering.max.kbytes": 65_536,
            "message.timeout.ms": 30_000,
        },
    )


class KafkaPublisher:
    def __init__(
        self,
        bootstrap: str,
        metrics: Metrics,
        client_id: str = "runward-sensor",
        topic: str = RAW_SENSOR.name,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.metrics = metrics
        config = producer_config(bootstrap, client_id)
        config.update(overrides or {})
        config["error_cb"] = self._on_error
        self._producer = Producer(config)

    def check(self, timeout_s: float = 5.0) -> str | None:
        """None if the broker answers and has the topic, else what is wrong."""
        try:
            metadata = self._producer.list_topics(self.topic, timeout=timeout_s)
        except KafkaException as exc:
            return f"Kafka does not answer ({exc.args[0]}); is the broker running? (--kafka / RUNWARD_KAFKA)"
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return (
                f"topic {self.topic} is missing on the broker ({topic.error if topic else 'absent'}); "
                "create the Runward topics first (runward broker does)"
            )
        return None

    def _on_error(self, error: KafkaError) -> None:
        log.warning("kafka: %s", error)
        self.metrics.inc("runward_sensor_producer_errors_total")

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.metrics.inc("runward_sensor_producer_delivered_total")
        else:
            self.metrics.inc("runward_sensor_producer_delivery_failed_total")
            log.warning("event not delivered to %s: %s", message.topic(), error)

    def publish(self, key: str, event: RawSensorEvent) -> bool:
        """Queue the event; False if the local queue is full (the event is dropped)."""
        value = encode(event)
        for attempt in range(2):
            try:
                self._producer.produce(self.topic, key=key.encode(), value=value, on_delivery=self._on_delivery)
                return True
            except BufferError:
                if attempt == 0:
                    self._producer.poll(0)  # serve delivery reports, which frees queue slots
        self.metrics.inc("runward_sensor_producer_queue_full_total")
        return False

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait for queued events; return how many are still undelivered."""
        return int(self._producer.flush(timeout_s))
