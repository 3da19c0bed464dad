"""Read runward.raw.sensor in the background with a plain Consumer (assign(), no group),
keeping when each record arrived so tests can measure end-to-end latency."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from runward.core.codec import RejectedRecord, decode
from runward.core.contracts import RawSensorEvent
from runward.core.topics import RAW_SENSOR


@dataclass(frozen=True)
class Received:
    key: str
    event: RawSensorEvent
    arrived: float  # wall clock, comparable with event.ts


class TopicReader:
    def __init__(self, bootstrap: str, partitions: int = 4) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "sensor-tests",
                "enable.auto.commit": False,
            }
        )
        self._consumer.assign([TopicPartition(RAW_SENSOR.name, p, 0) for p in range(partitions)])
        self._lock = threading.Lock()
        self._records: list[Received] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.05)
            if message is None:
                continue
            if message.error():
                self.errors.append(str(message.error()))
                continue
            arrived = time.time()
            try:
                event = decode(RAW_SENSOR, message.value())
            except RejectedRecord as exc:
                # Other tests share the session's broker and put bad records on purpose: skip them,
                # never let one end the reader.
                self.errors.append(str(exc))
                continue
            record = Received((message.key() or b"").decode(), event, arrived)
            with self._lock:
                self._records.append(record)

    def start(self) -> TopicReader:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()

    def records(self, where: Callable[[Received], bool] = lambda r: True) -> list[Received]:
        with self._lock:
            return [r for r in self._records if where(r)]

    def wait_for(
        self, where: Callable[[Received], bool], done: Callable[[list[Received]], bool], timeout: float
    ) -> list[Received]:
        """Matching records once `done(matching)` holds, or whatever matched at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            matching = self.records(where)
            if done(matching) or time.monotonic() > deadline:
                return matching
            time.sleep(0.05)
