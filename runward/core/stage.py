"""What every pipeline stage shares: a Faust app on raw bytes, decoding against the
topic table, dead-lettering with the reason, and a heartbeat into the store.

A stage's handler is plain code: it gets a decoded record and returns the records to
publish. Everything Kafka- and store-shaped stays here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import faust
from aiokafka.abc import AbstractTokenProvider
from faust.types.auth import CredentialsT
from pydantic import BaseModel

from runward.core.codec import RejectedRecord, decode, encode, encode_for
from runward.core.config import Settings
from runward.core.contracts import SourceRef, utcnow
from runward.core.kafka import dead_letter_record
from runward.core.metrics import StageMetrics, serve_metrics
from runward.core.store import Store
from runward.core.topics import DEAD_LETTER, Topic

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# Seconds a stage may take to stop after SIGTERM/SIGINT. With the broker gone Faust's consumer
# and producer wait for it forever; a stage that never exits blocks `runward up` and rollouts.
STOP_GRACE_S = 10.0


R = TypeVar("R", bound=BaseModel)


@dataclass
class Output(Generic[R]):
    """A record to publish, keyed as the topic table says; the record must be the topic's type."""

    topic: Topic[R]
    key: str
    record: R


@dataclass
class Context:
    """Where the record being handled came from."""

    source: SourceRef
    key: str | None


Handler = Callable[[Any, Context], Awaitable[Sequence[Output[Any]]]]


@dataclass
class _Counters:
    processed: int = 0
    dead_letters: int = 0
    last_record_at: datetime | None = None
    lag: dict[tuple[str, int], int] = field(default_factory=dict)


def tls_context(config: Settings) -> ssl.SSLContext | None:
    """The TLS context of the Faust (aiokafka) clients, from the same settings as librdkafka's."""
    if not config.kafka_tls:
        return None
    ca = config.kafka_tls_ca_file
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if config.kafka_tls_cert_file is not None and config.kafka_tls_key_file is not None:
        password = config.kafka_tls_key_password
        context.load_cert_chain(
            str(config.kafka_tls_cert_file),
            str(config.kafka_tls_key_file),
            password.get_secret_value() if password else None,
        )
    context.check_hostname = config.kafka_tls_check_hostname
    return context


class OidcTokenProvider(AbstractTokenProvider):  # type: ignore[misc] # aiokafka is untyped
    """OAUTHBEARER tokens for aiokafka from an OIDC token endpoint (client-credentials grant),
    as librdkafka's `sasl.oauthbearer.method=oidc` gets them for the other clients."""

    REFRESH_MARGIN_S = 30.0

    def __init__(self, url: str, client_id: str, client_secret: str, scope: str | None = None) -> None:
        self.url = url
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        if scope:
            self._form["scope"] = scope
        self._token: str | None = None
        self._expires = 0.0

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._expires:
            return self._token
        token, lifetime = await asyncio.to_thread(self._fetch)
        self._token, self._expires = token, time.monotonic() + max(0.0, lifetime - self.REFRESH_MARGIN_S)
        return token

    def _fetch(self) -> tuple[str, float]:
        body = urllib.parse.urlencode(self._form).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the configured endpoint
                answer = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"OAUTHBEARER token from {self.url} (RUNWARD_KAFKA_OAUTH_TOKEN_URL) failed: {exc}"
            ) from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise RuntimeError(f"{self.url} (RUNWARD_KAFKA_OAUTH_TOKEN_URL) answered without an access_token")
        return token, float(answer.get("expires_in", 300))


def broker_credentials(config: Settings) -> CredentialsT | None:
    """Faust's broker credentials for the TLS/SASL settings; None for plaintext."""
    context = tls_context(config)
    mechanism = config.kafka_sasl_mechanism
    if mechanism == "OAUTHBEARER":
        assert config.kafka_oauth_token_url and config.kafka_oauth_client_id and config.kafka_oauth_client_secret
        provider = OidcTokenProvider(
            config.kafka_oauth_token_url,
            config.kafka_oauth_client_id,
            config.kafka_oauth_client_secret.get_secret_value(),
            config.kafka_oauth_scope,
        )
        return faust.OAuthCredentials(oauth_cb=provider, ssl_context=context)
    if mechanism is not None:
        assert config.kafka_sasl_password is not None
        return faust.SASLCredentials(
            username=config.kafka_sasl_username,
            password=config.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def data_dir(config: Settings, name: str) -> Path:
    """Faust's data directory for a stage: under RUNWARD_HOME, never the working directory."""
    return config.home.resolve() / "faust" / f"runward-{name}"


class Stage:
    def __init__(
        self, name: str, inputs: Sequence[Topic[Any]], outputs: Sequence[Topic[Any]], config: Settings
    ) -> None:
        self.name = name
        self.config = config
        self.app = faust.App(
            f"runward-{name}",
            broker=f"kafka://{self.config.kafka}",
            broker_credentials=broker_credentials(self.config),
            datadir=str(data_dir(self.config, name)),
            store="memory://",  # tables are rebuilt from their changelog topics on restart
            topic_partitions=self.config.partitions,
            consumer_auto_offset_reset="earliest",
            web_enabled=False,
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
            for out in outputs:
                out.topic.check(out.record)  # a wrong record is the handler's bug: dead-letter the input
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

    async def publish(self, out: Output[Any]) -> None:
        # Checked here too: a handler's outputs are typed Any, so mypy cannot see a wrong record.
        await self._topics[out.topic.name].send(key=out.key.encode(), value=encode_for(out.topic, out.record))
        self.metrics.published(out.topic.name)

    async def dead_letter(self, source: SourceRef, key: str | None, payload: bytes | None, reason: str) -> None:
        letter = dead_letter_record(self.name, source, key, payload, reason)
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
        # Faust creates only the last level of its data directory.
        data_dir(self.config, self.name).mkdir(parents=True, exist_ok=True)
        worker = _Worker(self.app, loglevel="info", quiet=True)
        worker.execute_from_commandline()


def _exit_stuck(grace: float) -> None:
    log.error("did not stop within %.0f s of the stop signal (is the broker reachable?); exiting", grace)
    logging.shutdown()
    os._exit(1)


class _Worker(faust.Worker):
    """A Faust worker that exits within STOP_GRACE_S of being told to stop, whatever hangs."""

    async def on_stop(self) -> None:
        # on_stop runs first when the worker stops (SIGTERM, SIGINT or a crash), before its app.
        timer = threading.Timer(STOP_GRACE_S, _exit_stuck, (STOP_GRACE_S,))
        timer.daemon = True
        timer.start()
        await super().on_stop()
