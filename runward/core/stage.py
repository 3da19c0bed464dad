"""What every pipeline stage shares: a Faust app on raw bytes, decoding against the
topic table, dead-lettering with the reason, and a heartbeat into the store.

A stage's handler is plain code: it gets a decoded record and returns the records to
publish. Everything Kafka- and store-shaped stays here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from pydantic import BaseModel

from runward.core.codec import RejectedRecord, decode, encode
from runward.core.config import Settings, settings
from runward.core.contracts import DeadLetter, SourceRef, utcnow
from runward.core.metrics import StageMetrics, serve_metrics
from runward.core.store import Store
from runward.core.topics import DEAD_LETTER, Topic

log = logging.getLogger(__name__)

MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
HEARTBEAT_S = 2.0


@dataclass
class Output:
    """A record to publish, keyed as the topic table says."""

    topic: Topic
    key: str
    record: BaseModel


@dataclass
class Context:
    """Where the record being handled came from."""

    source: SourceRef
    key: str | None


Handler = Callable[[Any, Context], Awaitable[Sequence[Output]]]


@dataclass
class _Counters:
    processed: int = 0
    dead_letters: int = 0
    last_record_at: datetime | None = None
    lag: dict[tuple[str, int], int] = field(default_factory=dict)


class Stage:
    def __init__(
        self, name: str, inputs: Sequence[Topic], outputs: Sequence[Topic], config: Settings | None = None
    ) -> None:
        self.name = name
        self.config = config or settings()
        self.app = faust.App(
            f"runward-{name}",
            broker=f"kafka://{self.config.kafka}",
            store="memory://",  # tables are rebuilt from their changelog topics on restart
            topic_partitions=self.config.partitions,
            consumer_auto_offset_reset="earliest",
            web_enabled=False,
            datadir=str(self.config.home / f"runward-{name}-data"),  # never the working directory
            producer_acks=-1,
            # A restarted stage rejoins in seconds: the broker evicts a dead member after the session
            # timeout and completes a join after the rebalance timeout (Tansu waits it out in full).
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
            broker_rebalance_timeout=5.0,
        )
        self.inputs = {t.name: t for t in inputs}
        self._source = self.app.topic(*self.inputs, key_serializer="raw", value_serializer="raw")
        self._topics = {
            t.name: self.app.topic(
                t.name, key_serializer="raw", value_serializer="raw", partitions=self.config.partitions
            )
            for t in [*outputs, DEAD_LETTER]
        }
        self._counters = _Counters()
        self.metrics = StageMetrics(name)
        self._store: Store | None = None
        self.app.timer(HEARTBEAT_S)(self._heartbeat)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.db_url)
        return self._store

    def table(self, name: str) -> Any:
        """A per-deployment Faust table with a changelog, co-partitioned with the input topics."""
        return self.app.Table(name, default=None, partitions=self.config.partitions)

    def global_table(self, name: str) -> Any:
        """A table every worker of the stage holds whole (lookups keyed differently from the input)."""
        return self.app.GlobalTable(name, default=None, partitions=self.config.partitions)

    def run(self, handler: Handler) -> None:
        """Register the handler as the stage's Faust agent."""

        async def agent(stream: Any) -> None:
            async for event in stream.events():
                with self.metrics.handling():
                    await self._handle(handler, event)

        agent.__name__ = f"{self.name}_agent"
        self.app.agent(self._source, name=f"runward.{self.name}")(agent)

    async def _handle(self, handler: Handler, event: Any) -> None:
        message = event.message
        source = SourceRef(topic=message.topic, partition=message.partition, offset=message.offset)
        key = message.key.decode(errors="replace") if message.key else None
        self._track_lag(message)
        self.metrics.received(message.topic)
        try:
            record = decode(self.inputs[message.topic], message.value)
            outputs = await handler(record, Context(source=source, key=key))
        except RejectedRecord as exc:
            await self.dead_letter(source, key, message.value, str(exc))
            return
        except Exception as exc:
            # A bug must not stop the stage or lose the record: it waits in the dead-letter topic.
            log.exception("%s failed on %s[%d]@%d", self.name, source.topic, source.partition, source.offset)
            await self.dead_letter(
                source, key, message.value, f"stage error ({type(exc).__name__}: {exc}); report it with this record"
            )
            return
        for out in outputs:
            await self.publish(out)
        self._counters.processed += 1
        self._counters.last_record_at = utcnow()

    async def publish(self, out: Output) -> None:
        await self._topics[out.topic.name].send(key=out.key.encode(), value=encode(out.record))
        self.metrics.published(out.topic.name)

    async def dead_letter(self, source: SourceRef, key: str | None, payload: bytes | None, reason: str) -> None:
        raw = payload or b""
        letter = DeadLetter(
            stage=self.name,
            ts=utcnow(),
            source=source,
            reason=reason,
            key=key,
            payload=raw[:MAX_DEAD_LETTER_PAYLOAD].decode("utf-8", errors="replace"),
            payload_truncated=len(raw) > MAX_DEAD_LETTER_PAYLOAD,
        )
        log.warning("dead-lettered %s[%d]@%d: %s", source.topic, source.partition, source.offset, reason)
        await self._topics[DEAD_LETTER.name].send(key=self.name.encode(), value=encode(letter))
        await asyncio.to_thread(self.store.put_dead_letter, letter)
        self._counters.dead_letters += 1
        self.metrics.dead_lettered()

    def _track_lag(self, message: Any) -> None:
        tp = message.tp
        try:
            highwater = self.app.consumer.highwater(tp)
        except Exception:  # the consumer may not know the highwater before its first fetch
            return
        if highwater is not None:
            self._counters.lag[(tp.topic, tp.partition)] = max(0, highwater - message.offset - 1)
            self.metrics.lag(tp.topic, tp.partition, self._counters.lag[(tp.topic, tp.partition)])

    async def _heartbeat(self) -> None:
        counters, self._counters = self._counters, _Counters(lag=self._counters.lag)
        await asyncio.to_thread(
            self.store.record_progress,
            self.name,
            counters.processed,
            counters.dead_letters,
            sum(counters.lag.values()),
            counters.last_record_at,
        )

    def main(self) -> None:
        """Run the Faust worker in the foreground until SIGINT/SIGTERM."""
        self.store  # noqa: B018 - fail fast, before Kafka, when the store schema is not migrated
        serve_metrics(self.config.metrics_port, self.config.metrics_host)
        self.config.home.mkdir(parents=True, exist_ok=True)  # Faust creates its datadir without parents
        worker = faust.Worker(self.app, loglevel="info", quiet=True)
        worker.execute_from_commandline()
