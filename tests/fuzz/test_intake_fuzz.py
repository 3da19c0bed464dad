"""Fuzzing every intake and every contract decoder (a few thousand examples in CI; the long run
is bench/fuzz). Property: no 5xx from an intake, no exception other than RejectedRecord from a
decoder: bad input is answered or dead-lettered with a reason, never a crash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edges.intake import falco, tetragon
from edges.intake.publish import RawPublisher
from edges.intake.sensorcommon import translate_batch
from runward.control.broker import ensure_topics, free_port, start_broker
from runward.core.codec import RejectedRecord, decode, encode
from runward.core.topics import ALL_TOPICS, Topic
from tests.fuzz import strategies as s
from tests.fuzz.harness import poster, receiver

CI = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # A broker of its own: thousands of fuzzed records must not land on the topics other suites read.
    port = free_port()
    broker = start_broker(port, tmp_path_factory.mktemp("fuzz-broker") / "broker.log")
    try:
        ensure_topics(f"127.0.0.1:{port}", partitions=1)
        publisher = RawPublisher(f"127.0.0.1:{port}", "fuzz-intake")
        with receiver(publisher) as client:
            yield client
        publisher.close(timeout_s=5)
    finally:
        broker.terminate()
        broker.wait(timeout=10)


TARGETS = {
    "falco": s.bodies(s.falco_alerts),
    "tetragon": s.bodies(s.tetragon_events),
    "audit": s.bodies(s.audit_documents),
    "otlp-json": s.bodies(s.otlp_documents),
    "otlp-protobuf": s.otlp_protobuf_bodies,
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_no_intake_answers_5xx(client: TestClient, target: str) -> None:
    post = poster(client, target)

    @CI
    @given(TARGETS[target])
    def check(body: bytes) -> None:
        status = post(body)
        assert status < 500, f"{target}: {status} for {body[:300]!r}"

    check()


@CI
@given(st.lists(s.falco_alerts | s.json_values, max_size=3), st.lists(s.tetragon_events | s.json_values, max_size=3))
def test_translators_reject_with_a_reason_and_what_they_accept_encodes(falco_items: list, tetragon_items: list) -> None:  # type: ignore[type-arg]
    for items, translate in ((falco_items, falco.translate), (tetragon_items, tetragon.translate)):
        batch = translate_batch(items, translate)
        assert len(batch.events) + len(batch.rejected) == len(items)
        assert all(reason for _, reason in batch.rejected)
        for event in batch.events:
            encode(event)  # what is published must serialise


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=[t.name for t in ALL_TOPICS])
def test_every_decoder_accepts_or_rejects_with_a_reason(topic: Topic) -> None:
    @settings(CI, max_examples=100)
    @given(s.payloads_for(topic))
    def check(payload: bytes) -> None:
        try:
            record = decode(topic, payload)
        except RejectedRecord as exc:
            assert str(exc)
            return
        encode(record)

    check()
