"""The one way every Runward client outside Faust talks to Kafka.

`RecordProducer` (sensor, intake, MCP gateway, API, replay, reconciliation) and `read_topic`
(reconciliation, tests) encode and decode with the shared codec, are configured from the one
`Settings` (bootstrap, TLS, SASL) and keep Runward's delivery guarantees: idempotent, keyed
like Faust (murmur2) and every delivery error reported to the caller. The Faust stages get
the same security settings through runward.core.stage.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import BaseModel

from runward.core.codec import RejectedRecord, decode, encode_for
from runward.core.config import Settings, settings
from runward.core.contracts import DeadLetter, SourceRef, utcnow
from runward.core.topics import DEAD_LETTER, Topic


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """(host, port) of each bootstrap server in a `host:port,...` list (scheme prefixes allowed)."""
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition("://")[2].rpartition(":")
        if host and port.isdigit():
            out.append((host.strip("[]"), int(port)))
    return out


def bootstrap_reachable(bootstrap: str, timeout: float = 3.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection: checked before a client is made,
    so an unreachable Kafka is one line instead of librdkafka's retry log."""
    for host, port in bootstrap_addresses(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


log = logging.getLogger(__name__)

R = TypeVar("R")
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
DeliveryCallback = Callable[["DeliveryError | None"], None]


class DeliveryError(RuntimeError):
    """Kafka did not take a record; the message says where and why."""


class QueueFull(DeliveryError):
    """The producer's bounded local queue is full: the record was not queued."""


def kafka_settings(kafka: Settings | str | None = None) -> Settings:
    """The settings of a client: given ones, or the environment's with another bootstrap address
    (command-line `--kafka`); security settings always come from the one configuration."""
    if isinstance(kafka, Settings):
        return kafka
    base = settings()
    return base if not kafka else base.model_copy(update={"kafka": kafka})


def security_config(config: Settings) -> dict[str, Any]:
    """librdkafka's TLS/SASL properties for these settings (validated by Settings)."""
    out: dict[str, Any] = {"security.protocol": config.kafka_security_protocol.lower()}
    if config.kafka_tls:
        if config.kafka_tls_ca_file is not None:
            out["ssl.ca.location"] = str(config.kafka_tls_ca_file)
        if config.kafka_tls_cert_file is not None and config.kafka_tls_key_file is not None:
            out["ssl.certificate.location"] = str(config.kafka_tls_cert_file)
            out["ssl.key.location"] = str(config.kafka_tls_key_file)
        if config.kafka_tls_key_password is not None:
            out["ssl.key.password"] = config.kafka_tls_key_password.get_secret_value()
        out["ssl.endpoint.identification.algorithm"] = "https" if config.kafka_tls_check_hostname else "none"
    mechanism = config.kafka_sasl_mechanism
    if mechanism == "OAUTHBEARER":
        assert config.kafka_oauth_client_secret is not None  # checked by Settings
        out.update(
            {
                "sasl.mechanism": "OAUTHBEARER",
                "sasl.oauthbearer.method": "oidc",
                "sasl.oauthbearer.token.endpoint.url": config.kafka_oauth_token_url,
                "sasl.oauthbearer.client.id": config.kafka_oauth_client_id,
                "sasl.oauthbearer.client.secret": config.kafka_oauth_client_secret.get_secret_value(),
            }
        )
        if config.kafka_oauth_scope:
            out["sasl.oauthbearer.scope"] = config.kafka_oauth_scope
    elif mechanism is not None:
        assert config.kafka_sasl_password is not None  # checked by Settings
        out.update(
            {
                "sasl.mechanism": mechanism,
                "sasl.username": config.kafka_sasl_username,
                "sasl.password": config.kafka_sasl_password.get_secret_value(),
            }
        )
    return out


def client_config(kafka: Settings | str | None, client_id: str) -> dict[str, Any]:
    """What every confluent-kafka client (producer, consumer, admin) of Runward starts from."""
    config = kafka_settings(kafka)
    return {"bootstrap.servers": config.kafka, "client.id": client_id, **security_config(config)}


def producer_config(
    kafka: Settings | str | None, client_id: str, tuning: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Idempotent (acks=all, ordered retries) and keyed like the Java client and Faust (murmur2),
    so every record of an agent lands on the partition its Faust tables are co-partitioned with."""
    out = client_config(kafka, client_id)
    out.update(tuning or {})
    # Not tunable: the guarantees the pipeline relies on.
    out.update({"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random"})
    return out


class RecordProducer:
    """A confluent-kafka producer of contract records.

    Delivery reports are served by `poll()`/`flush()`, or by a thread of its own
    (`poll_thread=True`) for request/response callers that wait on `deliver()` futures.
    """

    def __init__(
        self,
        kafka: Settings | str | None,
        client_id: str,
        tuning: Mapping[str, Any] | None = None,
        *,
        on_error: Callable[[KafkaError], None] | None = None,
        poll_thread: bool = False,
    ) -> None:
        self.config = kafka_settings(kafka)
        self.client_id = client_id
        self._librdkafka = producer_config(self.config, client_id, tuning)
        self._librdkafka["error_cb"] = on_error or (lambda err: log.warning("kafka (%s): %s", client_id, err))
        self._producer: Producer | None = Producer(self._librdkafka)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_thread:
            self._thread = threading.Thread(target=self._serve, name=f"{client_id}-poll", daemon=True)
            self._thread.start()

    @property
    def bootstrap(self) -> str:
        return self.config.kafka

    def _serve(self) -> None:
        while not self._stop.is_set() and (producer := self._producer) is not None:
            producer.poll(0.1)

    def _live(self) -> Producer:
        if self._producer is None:
            raise DeliveryError(f"the Kafka producer {self.client_id} is closed")
        return self._producer

    def send(
        self, topic: Topic[Any], key: str | None, record: BaseModel, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Queue a record; `on_delivery` gets None or the DeliveryError. Raises QueueFull."""
        self.send_encoded(topic, key, encode_for(topic, record), on_delivery)

    def send_encoded(
        self, topic: Topic[Any], key: str | None, value: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Queue a value the codec already encoded (or checked: replay). Raises QueueFull."""
        producer = self._live()

        def delivered(error: KafkaError | None, message: Message) -> None:
            if on_delivery is not None:
                on_delivery(None if error is None else DeliveryError(f"{message.topic()}: {error.str()}"))
            elif error is not None:
                log.warning("record not delivered to %s: %s", message.topic(), error.str())

        raw_key = key.encode() if key else None
        for attempt in range(2):
            try:
                producer.produce(topic.name, key=raw_key, value=value, on_delivery=delivered)
                return
            except BufferError:
                if attempt == 0:
                    producer.poll(0)  # serve delivery reports, which frees queue slots
        raise QueueFull(f"the local queue of {self.client_id} is full; {topic.name} record not queued")

    def deliver(self, topic: Topic[Any], key: str | None, record: BaseModel) -> Future[None]:
        """Queue a record; the future resolves on the broker's acknowledgement or fails with DeliveryError."""
        future: Future[None] = Future()

        def done(error: DeliveryError | None) -> None:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        try:
            self.send(topic, key, record, done)
        except DeliveryError as exc:
            future.set_exception(exc)
        return future

    def publish(self, topic: Topic[Any], key: str | None, record: BaseModel, timeout_s: float) -> None:
        """Send one record and wait for the broker's acknowledgement; raise DeliveryError otherwise.

        After a failure the producer is replaced: an idempotent producer that hit a fatal error
        refuses further sends, and a record that was refused must not go out later behind the
        caller's back.
        """
        outcome: list[DeliveryError | None] = []
        with self._lock:
            try:
                self.send(topic, key, record, outcome.append)
                remaining = self._live().flush(timeout_s)
            except (DeliveryError, KafkaException) as exc:
                self._reset()
                raise DeliveryError(f"could not hand the record to the Kafka producer: {exc}") from None
            if remaining or not outcome:
                self._reset()
                raise DeliveryError(
                    f"Kafka at {self.bootstrap} did not acknowledge the record on {topic.name} "
                    f"within {timeout_s:g} s; it was not published, retry when Kafka is reachable"
                )
            if outcome[0] is not None:
                self._reset()
                raise DeliveryError(
                    f"Kafka at {self.bootstrap} did not take the record on {topic.name} ({outcome[0]}); "
                    "it was not published, retry when Kafka is reachable"
                )

    def _reset(self) -> None:
        producer, self._producer = self._producer, Producer(self._librdkafka)
        if producer is not None:
            try:
                producer.purge()
                producer.flush(0)
            except Exception:  # best effort on a producer we are throwing away
                log.debug("purging a discarded producer failed", exc_info=True)

    def poll(self, timeout_s: float = 0) -> int:
        return int(self._live().poll(timeout_s))

    def flush(self, timeout_s: float) -> int:
        """Wait for queued records; return how many are still undelivered."""
        return int(self._live().flush(timeout_s))

    def check(self, topic: Topic[Any], timeout_s: float = 5.0) -> str | None:
        """None if the broker answers and has the topic, else what is wrong."""
        try:
            metadata = self._live().list_topics(topic.name, timeout=timeout_s)
        except KafkaException as exc:
            return f"Kafka at {self.bootstrap} does not answer ({exc.args[0]}); is the broker running? (RUNWARD_KAFKA)"
        found = metadata.topics.get(topic.name)
        if found is None or found.error is not None:
            return (
                f"topic {topic.name} is missing on the broker ({found.error if found else 'absent'}); "
                "create the Runward topics first (runward broker does)"
            )
        return None

    def close(self, timeout_s: float = 10.0) -> int:
        """Flush and stop; return how many records were still undelivered."""
        producer, remaining = self._producer, 0
        if producer is not None:
            remaining = int(producer.flush(timeout_s))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._producer = None  # librdkafka's threads end with the last reference
        return remaining


def dead_letter_record(
    stage: str, source: SourceRef, key: str | None, payload: bytes | None, reason: str
) -> DeadLetter:
    """The dead letter of a record `stage` could not accept, with the reason and where it came from."""
    raw = payload or b""
    return DeadLetter(
        stage=stage,
        ts=utcnow(),
        source=source,
        reason=reason,
        key=key,
        payload=raw[:MAX_DEAD_LETTER_PAYLOAD].decode("utf-8", errors="replace"),
        payload_truncated=len(raw) > MAX_DEAD_LETTER_PAYLOAD,
    )


@dataclass(frozen=True)
class Received(Generic[R]):
    """A decoded record, its key, where it came from and its bytes as they were on the topic."""

    key: str | None
    record: R
    source: SourceRef
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class TopicRead(Generic[R]):
    records: list[Received[R]] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)
    timed_out: bool = False


def read_topic(
    kafka: Settings | str | None,
    topic: Topic[Any],
    *,
    reader: str,
    match: Callable[[Received[Any]], bool] | None = None,
    want: int | None = None,
    idle_s: float | None = None,
    timeout_s: float = 20.0,
    dead_letter: bool = True,
) -> TopicRead[Any]:
    """Read `topic` from its start, decoding every record with the shared codec.

    It stops once `want` records `match`ed, once the topic was quiet for `idle_s`, or at the
    timeout (`timed_out` then). Records the codec rejects are returned as dead letters and, with
    `dead_letter`, published to the dead-letter topic under the reader's name.

    The topic is read by assignment, not by a consumer group: a reader must not move a stage's
    offsets, and a group's rebalance is slow. High watermarks are not trusted for the end of the
    topic: the embedded broker (Tansu) reports 1 for partitions holding a whole batch.
    """
    config = kafka_settings(kafka)
    consumer = Consumer(
        {
            **client_config(config, f"runward-{reader}"),
            "group.id": f"runward-{reader}-{uuid.uuid4().hex}",  # required, never joined
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    result: TopicRead[Any] = TopicRead()
    try:
        metadata = consumer.list_topics(topic.name, timeout=10).topics.get(topic.name)
        if metadata is None or metadata.error is not None:
            raise DeliveryError(f"topic {topic.name} is not on {config.kafka}; is Runward up?")
        consumer.assign([TopicPartition(topic.name, p, 0) for p in metadata.partitions])
        deadline = time.monotonic() + timeout_s
        last_message = time.monotonic()
        while want is None or len(result.records) < want:
            now = time.monotonic()
            if idle_s is not None and now - last_message >= idle_s:
                break
            if now > deadline:
                result.timed_out = True
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            last_message = time.monotonic()
            _take(msg, topic, reader, match, result)
    finally:
        consumer.close()
    if dead_letter and result.rejected:
        _publish_dead_letters(config, reader, result.rejected)
    return result


def _take(
    msg: Message, topic: Topic[Any], reader: str, match: Callable[[Received[Any]], bool] | None, into: TopicRead[Any]
) -> None:
    source = SourceRef(topic=topic.name, partition=msg.partition() or 0, offset=msg.offset() or 0)
    raw_key = msg.key()
    key = raw_key.decode(errors="replace") if isinstance(raw_key, bytes) and raw_key else None
    value = msg.value()
    try:
        record = decode(topic, value)
    except RejectedRecord as exc:
        into.rejected.append(dead_letter_record(reader, source, key, value, str(exc)))
        return
    pairs: list[tuple[str, bytes | None]] = list(msg.headers() or [])  # type: ignore[arg-type]
    headers = {name: raw.decode(errors="replace") if isinstance(raw, bytes) else "" for name, raw in pairs}
    received = Received(key=key, record=record, source=source, value=value or b"", headers=headers)
    if match is None or match(received):
        into.records.append(received)


def _publish_dead_letters(config: Settings, reader: str, letters: list[DeadLetter]) -> None:
    producer = RecordProducer(config, f"runward-{reader}-dead-letters")
    failures: list[DeliveryError] = []
    try:
        for letter in letters:
            log.warning("%s dead-lettered %s: %s", reader, letter.source, letter.reason)
            producer.send(DEAD_LETTER, reader, letter, lambda err: failures.append(err) if err else None)
    finally:
        remaining = producer.close(15)
    if remaining or failures:
        raise DeliveryError(
            f"{remaining + len(failures)} dead letters of {reader} were not delivered to {DEAD_LETTER.name}"
            + (f", first: {failures[0]}" if failures else "")
        )
