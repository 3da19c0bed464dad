"""The one producer and the one topic reader against the real (plaintext) broker, and topic
creation that leaves an existing cluster's topics alone."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from runward.control.broker import ensure_topics, free_port, start_broker
from runward.core.contracts import EnforcementMode, PromotionDecision
from runward.core.kafka import DeliveryError, RecordProducer, read_topic
from runward.core.topics import ALL_TOPICS, DEAD_LETTER, PROMOTIONS


def decision(reason: str) -> PromotionDecision:
    return PromotionDecision(
        deployment="kafka/clients",
        mode=EnforcementMode.AUDIT,
        approver="test",
        reason=reason,
        ts=datetime(2026, 11, 30, tzinfo=timezone.utc),
    )


def test_published_records_are_read_back_decoded(kafka_bootstrap: str) -> None:
    marker = uuid.uuid4().hex
    producer = RecordProducer(kafka_bootstrap, "test-clients")
    producer.publish(PROMOTIONS, "kafka/clients", decision(marker), timeout_s=15)
    producer.close()
    read = read_topic(
        kafka_bootstrap, PROMOTIONS, reader="test", match=lambda r: r.record.reason == marker, want=1, dead_letter=False
    )
    (got,) = read.records
    assert isinstance(got.record, PromotionDecision) and got.key == "kafka/clients"
    assert got.record == decision(marker) and got.source.topic == PROMOTIONS.name and not read.timed_out


def test_undecodable_records_are_dead_lettered_by_the_reader(kafka_bootstrap: str) -> None:
    reader = f"reader-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    producer = RecordProducer(kafka_bootstrap, "test-clients")
    failures: list[DeliveryError | None] = []
    producer.send_encoded(PROMOTIONS, "kafka/bad", f'{{"not a decision": "{marker}"}}'.encode(), failures.append)
    assert producer.close(15) == 0 and failures == [None]

    read = read_topic(kafka_bootstrap, PROMOTIONS, reader=reader, idle_s=3, timeout_s=30)
    (rejected,) = [r for r in read.rejected if marker in r.payload]
    assert rejected.stage == reader and "does not match runward.promotions contract" in rejected.reason
    assert all(marker not in r.value.decode() for r in read.records)

    letters = read_topic(kafka_bootstrap, DEAD_LETTER, reader="test", match=lambda r: r.record.stage == reader, want=1)
    (letter,) = letters.records
    assert letter.key == reader and letter.record.source == rejected.source and marker in letter.record.payload


def test_publish_to_an_absent_broker_raises_with_the_reason() -> None:
    producer = RecordProducer(f"127.0.0.1:{free_port()}", "test-clients", {"message.timeout.ms": 1500})
    with pytest.raises(DeliveryError, match="did not (acknowledge|take) the record on runward.promotions"):
        producer.publish(PROMOTIONS, "kafka/clients", decision("x"), timeout_s=3)
    producer.close(0)


def test_ensure_topics_creates_only_missing_topics_and_never_alters_existing_ones(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    proc = start_broker(port, tmp_path_factory.mktemp("topics") / "broker.log")
    bootstrap = f"127.0.0.1:{port}"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(PROMOTIONS.name, 2, 1)])[PROMOTIONS.name].result(timeout=15)
        with caplog.at_level(logging.WARNING, logger="runward.control.broker"):
            created = ensure_topics(bootstrap, partitions=4)
        assert sorted(created) == sorted(t.name for t in ALL_TOPICS if t != PROMOTIONS)
        topics = admin.list_topics(timeout=10).topics
        assert len(topics[PROMOTIONS.name].partitions) == 2
        assert all(len(topics[t.name].partitions) == 4 for t in ALL_TOPICS if t != PROMOTIONS)
        assert f"topic {PROMOTIONS.name} has 2 partitions, not 4" in caplog.text
        assert ensure_topics(bootstrap, partitions=4) == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
