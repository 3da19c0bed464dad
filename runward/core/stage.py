"""What every pipeline stage shares: a Faust app on raw bytes, decoding against the
topic table, dead-lettering with the reason, and a heartbeat into the store.

A stage's handler is plain code: it gets a decoded record and returns the records to
publish. Everything Kafka- and store-shaped stays here.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import inspect
import json
import logging
import os
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import faust
from aiokafka.abc import AbstractTokenProvider
from faust.sensors import Monitor
from faust.streams import _current_event
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from faust.types.auth import CredentialsT
from mode.services import WaitResults
from pydantic import BaseModel

from runward.core.codec import RejectedRecord, decode, encode, encode_for, sanitise, to_json
from runward.core.config import Settings
from runward.core.contracts import AttackStory, SourceRef, utcnow
from runward.core.kafka import dead_letter_record
from runward.core.metrics import StageMetrics, serve_metrics
from runward.core.store import Store
from runward.core.topics import DEAD_LETTER, Topic

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# Seconds a stage may take to stop after SIGTERM/SIGINT. With the broker gone Faust's consumer
# and producer wait for it forever; a stage that never exits blocks `runward up` and rollouts.
STOP_GRACE_S = 10.0


# A stage takes its input in batches: up to BATCH_MAX records, or what came within BATCH_WITHIN_S.
# The wait bounds the latency a record gains from batching; the size bounds a batch's memory.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.02
# The broker refuses a record over 1 MiB (message.max.bytes); the margin is the record's framing.
MAX_OUTPUT_BYTES = 1_000_000
# A restarted stage rejoins in seconds: the broker evicts a dead member after the session timeout
# and completes a join after the rebalance timeout (Tansu waits it out in full).
SESSION_TIMEOUT_S = 10.0
REBALANCE_TIMEOUT_S = 5.0
# A batch hands the event loop back this often, so heartbeats, fetches and timers keep running.
YIELD_EVERY_S = 0.05
# How long a fetch may wait at the broker for records. Faust asks 1,500 ms, and the embedded broker
# answers a fetch of several partitions only when that wait is up, not when a record arrives: a
# record on an idle topic waited 600 ms at the median for each stage it passed (measured with
# aiokafka on Tansu: p50 612 ms at 1,500 ms, 7-10 ms at 50 ms). 50 ms keeps a raw event's three
# hops to its attack story well inside the latency budget for ~1 % of a CPU per idle stage.
FETCH_MAX_WAIT_MS = 50

R = TypeVar("R", bound=BaseModel)
M = TypeVar("M", bound=BaseModel)


@dataclass
class Output(Generic[R]):
    """A record to publish, keyed as the topic table says; the record must be the topic's type."""

    topic: Topic[R]
    key: str
    record: R
    # Records with the same `latest_of` on a topic are versions of one thing (a story): of those
    # handled in one batch only the last is published, the others are processed but superseded.
    latest_of: str | None = None
    # Kafka record headers (name, value): what a consumer routes and de-duplicates on without
    # decoding the value (the attack story's schema, id and version).
    headers: tuple[tuple[str, str], ...] = ()
    # With `latest_of`: fills in what only a published version needs (a story's OCSF rendering),
    # once per batch, for the version published; never for the versions it supersedes. The
    # record is then encoded, and checked against the record limit, only when it is published.
    finish: Callable[[R], R] | None = None


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


@dataclass
class _Out:
    """An output of a handled record: encoded, or (a version a later one may supersede, with a
    finisher) kept as its record until it is published."""

    topic: Topic[Any]
    key: bytes
    value: bytes | None
    latest_of: str | None
    headers: list[tuple[str, bytes]]
    record: Any = None
    finish: Callable[[Any], Any] | None = None


@dataclass
class _Done:
    """A record handled without error, waiting for its batch's store write and publish."""

    index: int
    source: SourceRef
    key: str | None
    payload: bytes | None
    encoded: list[_Out]
    stores: bool  # whether it has store writes: then it is published after the batch's store write
    store_error: str = ""
    deferred: bool = False  # published after the batch's store write
    failed: bool = False  # dead-lettered after it was handled (store write or publish failed)


def route_table_writes(event: Any) -> None:
    """Send the table writes that follow to `event`'s partition of their changelogs.

    Faust tables take the partition from `faust.current_event()`, a context variable, and only
    that is set here. `Stream._set_current_event` also sets the stream's `current_event`
    attribute, and `take_events` fills its buffer in another task that reads the event of the
    record it is adding from that attribute, after waiting for the batch being handled: set from
    the handler meanwhile, the next batch got an event of this batch in place of a new record's.
    That record was never handled, another one twice, and its offset was never acknowledged
    (found by tracing every offset each stage handled against the topics).
    """
    _current_event.set(weakref.ref(event))


class _ConsumerThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, fetching with `FETCH_MAX_WAIT_MS` (Faust fixes 1,500 ms)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


class _Resumed:
    """An awaitable that finishes a coroutine already run up to its first suspension."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation: the coroutine gets it where it waits
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class _Consumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer on `_ConsumerThread`, delivering a fetched record without four
    tasks per record.

    Faust hands each fetched record to the streams with `wait_first(deliver(record),
    suspend_flow.wait())`, so a rebalance can abandon a delivery blocked on a full stream buffer.
    `wait_first` makes a task for each of those and for the consumer's stopped and crashed
    events, and cancels three of them: about a tenth of a stage's CPU under a flood, for a
    delivery that almost never blocks. Here the delivery runs at once; only one that blocks goes
    the way Faust's does (raced against the suspension), as does every delivery while the flow
    is suspended or the consumer stopping.
    """

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if (
            len(coros) == 2
            and timeout is None
            and inspect.iscoroutine(coros[0])
            and self._waits_for_suspension(coros[1])
            and not (self.suspend_flow.is_set() or self._stopped.is_set() or self._crashed.is_set())
        ):
            deliver, suspension = coros
            try:
                pending = deliver.send(None)
            except StopIteration as done:
                suspension.close()
                return WaitResults([deliver], [done.value], False)
            except BaseException:
                suspension.close()
                raise
            return await super().wait_first(_Resumed(deliver, pending), suspension)
        return await super().wait_first(*coros, timeout=timeout)

    def _waits_for_suspension(self, coro: Any) -> bool:
        return (
            inspect.iscoroutine(coro)
            and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
            and coro.cr_frame is not None
            and coro.cr_frame.f_locals.get("self") is self.suspend_flow
        )


class _Monitor(Monitor):
    """Faust's monitor without its statistics per record.

    Faust calls its sensors for every record in and out of a stream; the monitor's statistics
    (counts per stream and task, run times, message latencies) feed Faust's web views, which a
    stage does not serve: a stage's metrics are `StageMetrics`, per batch. What Faust itself
    reads is kept: the stream's last inbound time per partition (its stalled-stream warning).
    """

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self.tp_read_offsets[tp] = offset

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
        self.stream_inbound_time[tp] = time.monotonic()
        return None  # no state: `on_stream_event_out` records nothing

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        return None


class _App(faust.App):
    """A Faust app whose Kafka consumer is `_Consumer`."""

    def _new_consumer(self) -> Any:
        transport = self.transport
        if transport.Consumer is AIOKafkaConsumer:
            transport.Consumer = _Consumer  # type: ignore[misc] # this app's transport only
        return super()._new_consumer()


def _superseded(done: Sequence[_Done]) -> frozenset[tuple[int, int]]:
    """(record index, output number) of the outputs a later output of the batch supersedes."""
    latest: set[tuple[str, str]] = set()
    superseded: set[tuple[int, int]] = set()
    for item in reversed(done):
        if item.store_error:
            continue
        for n in range(len(item.encoded) - 1, -1, -1):
            topic, latest_of = item.encoded[n].topic.name, item.encoded[n].latest_of
            if latest_of is None:
                continue
            if (topic, latest_of) in latest:
                superseded.add((item.index, n))
            latest.add((topic, latest_of))
    return frozenset(superseded)


def _bug(stage: str, source: SourceRef, exc: Exception) -> str:
    # A bug must not stop the stage or lose the record: it waits in the dead-letter topic.
    log.error(
        "%s failed on %s[%d]@%d", stage, source.topic, source.partition, source.offset, exc_info=(type(exc), exc, None)
    )
    return f"stage error ({type(exc).__name__}: {exc}); report it with this record"


def _checked(topic: Topic[Any], record: BaseModel) -> bytes:
    """The record encoded for `topic`, refused when the broker would refuse it."""
    value = encode_for(topic, record)
    if len(value) > MAX_OUTPUT_BYTES:
        raise RejectedRecord(
            f"its {topic.name} output is {len(value)} bytes, over the {MAX_OUTPUT_BYTES}-byte record limit"
        )
    return value


# The key of the end-of-batch record a table writes to each changelog partition it changed.
END_MARKER = "__runward_batch_end__"


class _Confirmed:
    """A Faust table that keeps the futures of its changelog records until the batch waits for them.

    Faust writes changelog records through a buffer that its offset commit does not reliably
    drain (the drain gives up after 0.1 s without progress, and does not wait for the record it
    is handing to the client): a stage killed after such a commit came back without the state of
    its last batch. So the harness waits for every changelog record of a batch to be on the
    broker before the batch's offsets can be committed.

    Then it writes one more record to each changelog partition the batch changed, on its own: a
    tombstone under END_MARKER. The embedded broker (Tansu 0.6) reports a partition's end offset
    as the first offset of its last produce batch plus one, and Faust restores a table only up to
    that end offset: without the marker, a restarted stage missed every changelog record of the
    last batch but its first (learnt state lost). With a one-record last batch the reported end
    is the true one; on a Kafka that reports it right the marker costs one small record.
    """

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().send_changelog(*args, **kwargs)  # type: ignore[misc]
        self.__dict__.setdefault("unconfirmed", []).append(fut)
        return fut

    def take_unconfirmed(self) -> list[Any]:
        unconfirmed: list[Any] = self.__dict__.pop("unconfirmed", [])
        return unconfirmed

    def mark_ends(self, partitions: set[int]) -> list[Any]:
        """Send the end-of-batch tombstone to each of `partitions`; their futures."""
        for partition in sorted(partitions):
            super().send_changelog(partition, END_MARKER, None, value_serializer="raw")  # type: ignore[misc]
        return self.take_unconfirmed()


class _Table(_Confirmed, faust.Table):  # type: ignore[type-arg] # keys and values are raw JSON here
    pass


class _GlobalTable(_Confirmed, faust.GlobalTable):
    pass


class ModelTable(Generic[M]):
    """A Faust table of one pydantic state per key, kept parsed in memory.

    Parsing and dumping a state for every record is most of a stage's cost, so a state is
    parsed once (again after a rebalance or restart restores new table values) and dumped into
    the table (and its changelog) once per batch. A record's changes are staged until the
    record is handled: a record that fails leaves the state as it was.
    """

    def __init__(self, table: Any, model: type[M]) -> None:
        self.table = table
        self.model = model
        self._parsed: dict[str, tuple[Any, M]] = {}  # key -> (table value, its parsed state)
        self._dirty: dict[str, tuple[M, Any]] = {}  # key -> (state, the event whose partition it goes to)
        self._staged: dict[str, M] = {}

    def get(self, key: str) -> M | None:
        if key in self._staged:
            return self._staged[key]
        if key in self._dirty:
            return self._dirty[key][0]
        raw = self.table.get(key)
        if raw is None:
            return None
        cached = self._parsed.get(key)
        if cached is not None and cached[0] is raw:
            return cached[1]
        state = self.model.model_validate(raw)
        self._parsed[key] = (raw, state)
        return state

    def __setitem__(self, key: str, state: M) -> None:
        self._staged[key] = state

    def commit(self, event: Any) -> None:
        for key, state in self._staged.items():
            self._dirty[key] = (state, event)
        self._staged.clear()

    def discard(self) -> None:
        self._staged.clear()

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for key, (state, event) in dirty.items():
            route_table_writes(event)  # the changelog record goes to the key's partition
            raw = state.model_dump(mode="json")
            self.table[key] = raw
            self._parsed[key] = (raw, state)


@dataclass
class _Writes:
    """One record's store writes."""

    artifacts: list[tuple[str, str, int, datetime, BaseModel]] = field(default_factory=list)
    stories: list[tuple[AttackStory, Callable[[AttackStory], AttackStory] | None]] = field(default_factory=list)
    touches: list[tuple[str, str | None, datetime]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.artifacts or self.stories or self.touches)


class _StoreWrites:
    """A batch's store writes, coalesced: the last body per artifact revision, the newest
    version per story, one last-seen upsert per agent; written in one transaction."""

    def __init__(self) -> None:
        self._current = _Writes()
        self._records: list[tuple[int, _Writes]] = []
        self._count = 0

    def begin(self) -> None:
        self._current = _Writes()

    def artifact(self, deployment: str, kind: str, revision: int, created_at: datetime, body: BaseModel) -> None:
        self._current.artifacts.append((deployment, kind, revision, created_at, body))

    def story(self, story: AttackStory, finish: Callable[[AttackStory], AttackStory] | None) -> None:
        self._current.stories.append((story, finish))

    def touch(self, deployment: str, service_account: str | None, seen: datetime) -> None:
        self._current.touches.append((deployment, service_account, seen))

    def discard(self) -> None:
        self._current = _Writes()

    def commit(self) -> int:
        index, self._count = self._count, self._count + 1
        if not self._current.empty:
            self._records.append((index, self._current))
        self._current = _Writes()
        return index

    @property
    def empty(self) -> bool:
        return not self._records

    @property
    def current_empty(self) -> bool:
        return self._current.empty

    def per_record(self) -> list[tuple[int, _Writes]]:
        return list(self._records)

    def apply(self, store: Store) -> None:
        apply_writes(store, [w for _, w in self._records])


def apply_writes(store: Store, records: Sequence[_Writes]) -> None:
    artifacts: dict[tuple[str, str, int], tuple[datetime, BaseModel]] = {}
    stories: dict[str, tuple[AttackStory, Callable[[AttackStory], AttackStory] | None]] = {}
    touches: dict[str, tuple[str | None, datetime, datetime]] = {}
    for writes in records:
        for deployment, kind, revision, created_at, body in writes.artifacts:
            artifacts[(deployment, kind, revision)] = (created_at, body)
        for story, finish in writes.stories:
            known = stories.get(story.story_id)
            if known is None or story.version >= known[0].version:
                stories[story.story_id] = (story, finish)
        for deployment, service_account, seen in writes.touches:
            known_touch = touches.get(deployment)
            if known_touch is None:
                touches[deployment] = (service_account, seen, seen)
            else:
                touches[deployment] = (
                    service_account or known_touch[0],
                    min(seen, known_touch[1]),
                    max(seen, known_touch[2]),
                )
    finished = [finish(story) if finish else story for story, finish in stories.values()]
    # Bodies are serialised once, by pydantic (`to_json`: the walk replacing lone surrogates runs
    # only for a body that has one); the store serialises a story itself, once it has merged it
    # with the lifecycle the SOC gave the stored one.
    store.write_batch(
        touches=[(d, sa, first, last) for d, (sa, first, last) in touches.items()],
        artifacts=[
            (d, kind, rev, created_at, to_json(body)) for (d, kind, rev), (created_at, body) in artifacts.items()
        ],
        stories=finished,
    )


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
        self.app = _App(
            f"runward-{name}",
            broker=f"kafka://{self.config.kafka}",
            broker_credentials=broker_credentials(self.config),
            datadir=str(data_dir(self.config, name)),
            store="memory://",  # tables are rebuilt from their changelog topics on restart
            topic_partitions=self.config.partitions,
            consumer_auto_offset_reset="earliest",
            web_enabled=False,
            producer_acks=-1,
            Table=_Table,
            GlobalTable=_GlobalTable,
            Monitor=_Monitor,
            # A batch's outputs go out in a few produce requests, not one round trip each; 5 ms is
            # far below the latency budget. Fetches bring a batch's worth of records at once.
            producer_linger=0.005,
            broker_max_poll_records=BATCH_MAX,
            stream_buffer_maxsize=4 * BATCH_MAX,
            # A restarted stage rejoins in seconds: the broker evicts a dead member after the session
            # timeout and completes a join after the rebalance timeout (Tansu waits it out in full).
            broker_session_timeout=SESSION_TIMEOUT_S,
            broker_heartbeat_interval=2.0,
            broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        )
        self.inputs = {t.name: t for t in inputs}
        self._source = self.app.topic(*self.inputs, key_serializer="raw", value_serializer="raw")
        self._topics = {
            t.name: self.app.topic(
                t.name, key_serializer="raw", value_serializer="raw", partitions=self.config.partitions
            )
            for t in [*outputs, DEAD_LETTER]
        }
        # Records finished in this batch, by identity: the version a batch stores and the one it
        # publishes are the same record, finished once.
        self._finished: dict[int, Any] = {}
        self._counters = _Counters()
        self._writes = _StoreWrites()
        self._model_tables: list[ModelTable[Any]] = []
        self._tables: list[_Confirmed] = []
        # A batch's outputs and dead letters handed to the producer, awaited before its offsets can commit.
        self._unconfirmed: list[tuple[_Done | None, str, Any]] = []
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
        table = self.app.Table(name, default=None, partitions=self.config.partitions)
        self._tables.append(cast(_Confirmed, table))  # the app's Table class is _Table
        return table

    def global_table(self, name: str) -> Any:
        """A table every worker of the stage holds whole (lookups keyed differently from the input)."""
        table = self.app.GlobalTable(name, default=None, partitions=self.config.partitions)
        self._tables.append(cast(_Confirmed, table))  # the app's GlobalTable class is _GlobalTable
        return table

    def model_table(self, name: str, model: type[M]) -> ModelTable[M]:
        """A per-deployment table of `model` states, parsed once and written once per batch."""
        table = ModelTable(self.table(name), model)
        self._model_tables.append(table)
        return table

    def put_artifact(self, deployment: str, kind: str, revision: int, created_at: datetime, body: BaseModel) -> None:
        """Store an artifact revision with the batch (one transaction per batch, last write per revision)."""
        self._writes.artifact(deployment, kind, revision, created_at, body)

    def put_story(self, story: AttackStory, finish: Callable[[AttackStory], AttackStory] | None = None) -> None:
        """Store an attack story with the batch (only its newest version in the batch is written,
        through `finish` if given: see `Output.finish`)."""
        self._writes.story(story, functools.partial(self._finish, finish=finish) if finish else None)

    def touch_agent(self, deployment: str, service_account: str | None, seen: datetime) -> None:
        """Note that an agent was seen, with the batch (one upsert per agent per batch)."""
        self._writes.touch(deployment, service_account, seen)

    def run(self, handler: Handler) -> None:
        """Register the handler as the stage's Faust agent, fed in batches."""

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
                with self.metrics.handling():
                    await self._handle_batch(handler, events)

        agent.__name__ = f"{self.name}_agent"
        self.app.agent(self._source, name=f"runward.{self.name}")(agent)

    async def _handle_batch(self, handler: Handler, events: Sequence[Any]) -> None:
        """Handle a batch record by record, then store, write state and publish once for all of it.

        A record that fails (decode, handler, output check, encoding, store, produce) is
        dead-lettered with the reason and leaves no state, store row or output behind; the
        rest of the batch goes on. The batch returns (and Faust may then commit its offsets) only
        once its store rows, state changelog records, outputs and dead letters are durable: a
        stage killed at any point comes back to a state that matches its committed offsets.
        """
        done: list[_Done] = []
        deferred: set[str | None] = set()  # keys with a record waiting for the store write
        self._count_in(events)
        yielded = time.monotonic()
        for event in events:
            route_table_writes(event)  # table writes go to this record's partition
            item = await self._handle_one(handler, event)
            if item is not None:
                done.append(item)
                # Signals and the like go out at once, not after the store write, unless an
                # earlier record of the same key waits for it: outputs keep their records' order.
                if item.stores or item.key in deferred:
                    item.deferred = True
                    deferred.add(item.key)
                else:
                    await self._send(item)
            if time.monotonic() - yielded > YIELD_EVERY_S:
                await asyncio.sleep(0)  # let the consumer, producer and timers run in a long batch
                yielded = time.monotonic()
        for failed, reason in (await self._flush_store()).items():
            item = done[failed]
            item.store_error = reason
            await self.dead_letter(item.source, item.key, item.payload, reason, item)
        for table in self._model_tables:
            table.flush()
        superseded = _superseded(done)
        for item in done:
            if item.deferred and not item.store_error:
                await self._send(item, superseded)
        await self._confirm()
        self._finished.clear()
        for item in done:
            if not item.failed:
                self._counters.processed += 1
        if done:
            self._counters.last_record_at = utcnow()

    def _count_in(self, events: Sequence[Any]) -> None:
        """Per batch, not per record: the records in per topic, the lag after each partition's last record."""
        newest: dict[Any, Any] = {event.message.tp: event.message for event in events}
        for message in newest.values():
            self._track_lag(message)
        for topic, count in collections.Counter(event.message.topic for event in events).items():
            self.metrics.received(topic, count)

    async def _confirm(self) -> None:
        """Wait until the batch's changelog records, outputs and dead letters are on the broker.

        An output the broker refused dead-letters its record. A changelog record it refused
        leaves state that the committed offsets would not match: the stage exits at once,
        before Faust can commit, and its supervisor restarts it from the last committed offset.
        """
        changed = {id(table): table.take_unconfirmed() for table in self._tables}
        await _changelog_durable(self.name, [fut for futs in changed.values() for fut in futs])
        markers = [
            fut
            for table in self._tables
            for fut in table.mark_ends(
                {f.message.partition for f in changed[id(table)]} if changed[id(table)] else set()
            )
        ]
        await _changelog_durable(self.name, markers)
        while self._unconfirmed:
            pending, self._unconfirmed = self._unconfirmed, []
            outcomes = await asyncio.gather(*(fut for _, _, fut in pending), return_exceptions=True)
            for (item, topic, _), outcome in zip(pending, outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    continue
                if item is None or topic == DEAD_LETTER.name:
                    log.error("%s: a dead letter was not accepted by the broker: %s", self.name, outcome)
                    continue
                if not item.failed:
                    reason = f"its {topic} output was not accepted by the broker ({type(outcome).__name__}: {outcome})"
                    await self.dead_letter(item.source, item.key, item.payload, reason, item)

    async def _handle_one(self, handler: Handler, event: Any) -> _Done | None:
        message = event.message
        source = SourceRef(topic=message.topic, partition=message.partition, offset=message.offset)
        key = message.key.decode(errors="replace") if message.key else None
        self._writes.begin()
        try:
            record = decode(self.inputs[message.topic], message.value)
            outputs = await handler(record, Context(source=source, key=key))
            encoded = [self._encode(out) for out in outputs]
        except Exception as exc:
            self._writes.discard()
            for table in self._model_tables:
                table.discard()
            reason = str(exc) if isinstance(exc, RejectedRecord) else _bug(self.name, source, exc)
            await self.dead_letter(source, key, message.value, reason)
            return None
        stores = not self._writes.current_empty
        index = self._writes.commit()
        for table in self._model_tables:
            table.commit(event)
        return _Done(index, source, key, message.value, encoded, stores)

    def _encode(self, out: Output[Any]) -> _Out:
        headers = [(name, value.encode()) for name, value in out.headers]
        if out.latest_of is not None and out.finish is not None:
            return _Out(out.topic, out.key.encode(), None, out.latest_of, headers, out.record, out.finish)
        record = out.finish(out.record) if out.finish is not None else out.record
        return _Out(out.topic, out.key.encode(), _checked(out.topic, record), out.latest_of, headers)

    async def _flush_store(self) -> dict[int, str]:
        """Write the batch's store rows; the records (index among the batch's handled ones) whose
        writes failed, with the reason."""
        writes, self._writes = self._writes, _StoreWrites()
        if writes.empty:
            return {}
        try:
            await asyncio.to_thread(writes.apply, self.store)
            return {}
        except Exception:
            log.exception("%s: the batch's store write failed; retrying record by record", self.name)
        failed: dict[int, str] = {}
        for index, one in writes.per_record():
            try:
                await asyncio.to_thread(apply_writes, self.store, [one])
            except Exception as exc:
                failed[index] = f"its store write failed ({type(exc).__name__}: {exc})"
        return failed

    async def _send(self, item: _Done, superseded: frozenset[tuple[int, int]] = frozenset()) -> None:
        """Hand a handled record's outputs to the producer; the batch waits for them in `_confirm`."""
        for n, out in enumerate(item.encoded):
            if (item.index, n) in superseded:
                continue
            topic = out.topic.name
            try:
                value = out.value
                if value is None:
                    assert out.finish is not None
                    value = _checked(out.topic, self._finish(out.record, out.finish))
            except Exception as exc:
                # Rare (stories are bounded): the record's state and store rows stand, its output
                # does not; it waits in the dead-letter topic with the reason.
                reason = str(exc) if isinstance(exc, RejectedRecord) else _bug(self.name, item.source, exc)
                await self.dead_letter(item.source, item.key, item.payload, reason, item)
                return
            try:
                fut = await self._topics[topic].send(key=out.key, value=value, headers=out.headers or None)
            except Exception as exc:
                log.exception("%s: publishing to %s failed", self.name, topic)
                reason = f"its {topic} output could not be published ({type(exc).__name__}: {exc})"
                await self.dead_letter(item.source, item.key, item.payload, reason, item)
                return
            self._unconfirmed.append((item, topic, fut))
            self.metrics.published(topic)

    def _finish(self, record: Any, finish: Callable[[Any], Any]) -> Any:
        """`finish(record)`, once per record of the batch (see `Output.finish`)."""
        if id(record) not in self._finished:
            self._finished[id(record)] = finish(record)
        return self._finished[id(record)]

    async def publish(self, out: Output[Any]) -> None:
        # Checked here too: a handler's outputs are typed Any, so mypy cannot see a wrong record.
        await self._topics[out.topic.name].send(key=out.key.encode(), value=encode_for(out.topic, out.record))
        self.metrics.published(out.topic.name)

    async def dead_letter(
        self, source: SourceRef, key: str | None, payload: bytes | None, reason: str, item: _Done | None = None
    ) -> None:
        """Dead-letter a record with the reason; `item` if it had been handled (it is then not processed)."""
        if item is not None:
            item.failed = True
        letter = dead_letter_record(self.name, source, key, payload, sanitise(reason))
        log.warning("dead-lettered %s[%d]@%d: %s", source.topic, source.partition, source.offset, reason)
        self._counters.dead_letters += 1
        self.metrics.dead_lettered()
        try:
            fut = await self._topics[DEAD_LETTER.name].send(key=self.name.encode(), value=encode(letter))
            self._unconfirmed.append((None, DEAD_LETTER.name, fut))
            await asyncio.to_thread(self.store.put_dead_letter, letter)
        except Exception:
            # Nothing left to hand the record to: say so loudly, but keep the stage running.
            log.exception(
                "%s: could not dead-letter %s[%d]@%d", self.name, source.topic, source.partition, source.offset
            )

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
        try:
            await asyncio.to_thread(
                self.store.record_progress,
                self.name,
                counters.processed,
                counters.dead_letters,
                sum(counters.lag.values()),
                counters.last_record_at,
            )
        except Exception:
            # A timer that raises ends Faust's worker: a store that is briefly away must not stop
            # the stage. The counts are kept for the next heartbeat.
            log.exception("%s: the heartbeat could not be recorded; retrying at the next one", self.name)
            self._counters.processed += counters.processed
            self._counters.dead_letters += counters.dead_letters
            if self._counters.last_record_at is None:
                self._counters.last_record_at = counters.last_record_at

    def main(self) -> None:
        """Run the Faust worker in the foreground until SIGINT/SIGTERM."""
        self.store  # noqa: B018 - fail fast, before Kafka, when the store schema is not migrated
        serve_metrics(self.config.metrics_port, self.config.metrics_host)
        # Faust creates only the last level of its data directory.
        data_dir(self.config, self.name).mkdir(parents=True, exist_ok=True)
        running = data_dir(self.config, self.name) / "running"
        if running.exists():
            # The last worker here was killed: the broker keeps its group member until the session
            # times out, and the rebalance that drops it ends the generation a new member starts
            # reading under. Faust skips (and counts as done) records read under an ending
            # generation, so the new worker joins once the old member is gone.
            wait = SESSION_TIMEOUT_S + REBALANCE_TIMEOUT_S
            # Printed: logging is set up only when the Faust worker starts.
            print(
                f"{self.name} did not stop cleanly last time: joining in {wait:.0f} s, once its old member is gone",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(wait)
        running.write_text(str(os.getpid()))
        # Everything loaded so far (modules, schemas, compiled patterns, the detector's model) lives
        # as long as the process: kept out of the collector's generations, a full collection walks
        # only what the stage made since. Full collections were a quarter of the correlator's CPU
        # per record in the flood and 9 µs of the profiler's (cProfile, `bench/pipeline/inproc.py`).
        gc.freeze()
        try:
            worker = _Worker(self.app, loglevel="info", quiet=True)
            worker.execute_from_commandline()
        finally:
            running.unlink(missing_ok=True)


async def _changelog_durable(stage: str, futures: list[Any]) -> None:
    for fut, outcome in zip(futures, await asyncio.gather(*futures, return_exceptions=True), strict=True):
        if isinstance(outcome, BaseException):
            _exit_unconfirmed(stage, fut, outcome)


def _exit_unconfirmed(stage: str, fut: Any, exc: BaseException) -> None:
    # Raising would not do: Faust acks a batch's records when its generator closes, and would
    # commit offsets past state that is not on the broker. Exiting now leaves them uncommitted.
    topic = getattr(getattr(getattr(fut, "message", None), "channel", None), "get_topic_name", lambda: "?")()
    log.critical("%s: the broker did not accept a %s state record (%s); exiting to be restarted", stage, topic, exc)
    logging.shutdown()
    os._exit(70)


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
