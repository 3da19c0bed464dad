"""POST /promotion: the gate's refusals, and an accepted decision landing on the real broker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.control.broker import free_port
from runward.core import signing
from runward.core.codec import decode
from runward.core.config import Settings
from runward.core.contracts import EnforcementMode, PromotionDecision, WindowStatus
from runward.core.kafka import Received
from runward.core.store import Store
from runward.core.topics import PROMOTIONS
from tests.enforcer.proofs import proof_of
from tests.kafka_reading import read_messages

from .support import APPROVER, NOW, PROMOTION_KEY, TOKEN_SPEC, VIEWER, SpyPublisher, apd, bundle, make_client, put

PARTITIONS = 4


def kafka_murmur2_partition(key: bytes, partitions: int) -> int:
    """Partition the Java client (and librdkafka's murmur2_random) picks for a non-null key."""
    m, h = 0x5BD1E995, 0x9747B28C ^ len(key)
    whole = len(key) & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def read_promotion(bootstrap: str, reason: str, timeout_s: float = 30) -> Received[PromotionDecision]:
    found = read_messages(bootstrap, PROMOTIONS.name, 1, lambda m: m.record.reason == reason, timeout_s)
    assert found, f"no promotion with reason {reason!r} on {PROMOTIONS.name} within {timeout_s} s"
    return found[0]


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        (b"", 681),
        (b"a", 524),
        (b"ab", 434),
        (b"abc", 107),
        (b"123456789", 566),
        (b"\x00 ", 742),
    ],
)
def test_reference_partitioner_matches_the_java_client(key: bytes, partition: int) -> None:
    # Values from Kafka's Java partitioner over 1000 partitions (as kafka-python checks them).
    assert kafka_murmur2_partition(key, 1000) == partition


def test_accepted_promotion_lands_on_the_promotions_topic(
    client: TestClient, store: Store, publisher: SpyPublisher, kafka_bootstrap: str
) -> None:
    # An agent whose window is complete and which has no story: ready for audit.
    store.touch_agent("shop/ready", "ready-sa", NOW - timedelta(days=5))
    put(store, "apd", apd("shop/ready", 1, WindowStatus.COMPLETE))
    reason = f"window complete, reviewed {uuid.uuid4().hex}"
    response = client.post(
        "/v1/agents/shop/ready/promotion", headers=APPROVER, json={"mode": "audit", "reason": reason}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["deployment"], body["mode"], body["approver"], body["reason"]) == (
        "shop/ready",
        "audit",
        "bob",
        reason,
    )

    message = read_promotion(kafka_bootstrap, reason)
    assert message.key == "shop/ready"
    assert message.source.partition == kafka_murmur2_partition(b"shop/ready", PARTITIONS)
    decision = decode(PROMOTIONS, message.value)
    assert isinstance(decision, PromotionDecision)
    assert decision.model_dump(mode="json") == body
    # Signed by the API: the enforcer's check passes with the key, fails with another or if altered.
    assert signing.signature_problem(decision, PROMOTION_KEY.encode()) is None
    assert signing.signature_problem(decision, b"another-key-" * 4) is not None
    altered = decision.model_copy(update={"approver": "mallory"})
    assert "does not match" in (signing.signature_problem(altered, PROMOTION_KEY.encode()) or "")


def test_without_a_promotion_key_nothing_is_published(store: Store, publisher: SpyPublisher, tmp_path: Path) -> None:
    config = Settings(api_tokens=TOKEN_SPEC, home=tmp_path)  # no key set, no key file
    with make_client(create_app(config, store=store, publisher=publisher)) as client:
        response = client.post(
            "/v1/agents/shop/retriever/promotion", headers=APPROVER, json={"mode": "observe", "reason": "x"}
        )
    assert response.status_code == 503
    assert "no promotion key is configured" in response.json()["detail"]
    assert publisher.calls == []


def test_stepping_back_needs_no_gate(client: TestClient, publisher: SpyPublisher) -> None:
    response = client.post(
        "/v1/agents/shop/retriever/promotion",
        headers=APPROVER,
        json={"mode": "observe", "reason": "agent broke under audit"},
    )
    assert response.status_code == 202
    assert [(topic, key) for topic, key, _ in publisher.calls] == [(PROMOTIONS.name, "shop/retriever")]


@pytest.mark.parametrize(
    ("agent", "mode", "expected"),
    [
        ("shop/planner", "audit", ["observation window of APD revision 1 is learning, not complete"]),
        (
            "shop/planner",
            "enforce",
            [
                "is learning, not complete",
                "enforce needs the agent to be in audit mode",
                # readiness (services/enforcer/readiness.py) for enforce, beyond what the gate states
                "readiness check aibom_reviewed fails",
                "readiness check reconciliation_reviewed fails",
                "no passing proof for APD revision",
                "readiness check audit_soak fails",
            ],
        ),
        (
            "shop/retriever",
            "enforce",
            [
                "readiness check aibom_reviewed fails",
                "readiness check reconciliation_reviewed fails",
                "no passing proof for APD revision",
                "readiness check audit_soak fails",
            ],
        ),
        ("ops/helper", "audit", ["attack story st-live", "attack story st-held"]),
        ("ops/fresh", "audit", ["no APD baseline exists yet"]),
        ("shop/retriever", "audit", ["the agent is already in audit mode"]),
    ],
)
def test_gate_refusals_are_409_with_every_reason(
    client: TestClient, publisher: SpyPublisher, agent: str, mode: str, expected: list[str]
) -> None:
    response = client.post(f"/v1/agents/{agent}/promotion", headers=APPROVER, json={"mode": mode, "reason": "go"})
    assert response.status_code == 409
    body = response.json()
    assert f"promotion of {agent}" in body["detail"] and f"to {mode} refused" in body["detail"]
    assert len(body["reasons"]) == len(expected)
    for fragment in expected:
        assert sum(fragment in reason for reason in body["reasons"]) == 1, (fragment, body["reasons"])
    assert publisher.calls == []


def test_promotion_of_unknown_agent_is_404(client: TestClient) -> None:
    response = client.post("/v1/agents/shop/ghost/promotion", headers=APPROVER, json={"mode": "audit", "reason": "x"})
    assert response.status_code == 404
    assert "agent shop/ghost not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "yolo", "reason": "x"},
        {"mode": "audit"},
        {"mode": "audit", "reason": ""},
        {"mode": "audit", "reason": "x", "approver": "someone-else"},
    ],
)
def test_bad_promotion_body_is_422(client: TestClient, publisher: SpyPublisher, body: dict[str, str]) -> None:
    assert client.post("/v1/agents/shop/retriever/promotion", headers=APPROVER, json=body).status_code == 422
    assert publisher.calls == []


def test_kafka_down_is_503(store: Store) -> None:
    dead = KafkaPublisher(f"127.0.0.1:{free_port()}", timeout_s=2)
    app = create_app(Settings(api_tokens=TOKEN_SPEC, promotion_key=PROMOTION_KEY), store=store, publisher=dead)
    with make_client(app) as client:
        response = client.post(
            "/v1/agents/shop/retriever/promotion", headers=APPROVER, json={"mode": "observe", "reason": "roll back"}
        )
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "not recorded" in detail and "retry when Kafka is reachable" in detail


def test_accepting_an_apd_revision_into_frozen_policies(
    client: TestClient, store: Store, publisher: SpyPublisher, kafka_bootstrap: str
) -> None:
    """Only an enforced agent's latest APD revision can be accepted; the decision is signed and published."""
    store.touch_agent("shop/frozen", "frozen-sa", NOW - timedelta(days=5))
    put(store, "apd", apd("shop/frozen", 1, WindowStatus.COMPLETE))
    put(store, "policy", bundle("shop/frozen", 1, EnforcementMode.AUDIT))
    url = "/v1/agents/shop/frozen/policy-accept"
    refused = client.post(url, headers=APPROVER, json={"apd_revision": 1, "reason": "x"})
    assert refused.status_code == 409
    assert "the agent is in audit mode" in refused.json()["reasons"][0]

    put(store, "policy", bundle("shop/frozen", 2, EnforcementMode.ENFORCE))
    put(store, "apd", apd("shop/frozen", 2, WindowStatus.COMPLETE))
    stale = client.post(url, headers=APPROVER, json={"apd_revision": 1, "reason": "x"})
    assert stale.status_code == 409
    assert stale.json()["reasons"] == ["APD revision 1 is not the latest (2); review and accept 2"]
    assert client.post(url, headers=VIEWER, json={"apd_revision": 2, "reason": "x"}).status_code == 403
    unproven = client.post(url, headers=APPROVER, json={"apd_revision": 2, "reason": "x"})
    assert unproven.json()["reasons"] == ["no passing proof for APD revision 2: run `runward prove shop/frozen`"]
    assert publisher.calls == []

    proof = proof_of(apd("shop/frozen", 2, WindowStatus.COMPLETE)).model_dump(mode="json")
    store.put_artifact("shop/frozen", "proof", 1, NOW, {**proof, "number": 1})
    reason = f"new MCP endpoint reviewed {uuid.uuid4().hex}"
    accepted = client.post(url, headers=APPROVER, json={"apd_revision": 2, "reason": reason})
    assert accepted.status_code == 202, accepted.text
    decision = decode(PROMOTIONS, read_promotion(kafka_bootstrap, reason).value)
    assert isinstance(decision, PromotionDecision)
    assert (decision.mode, decision.accept_apd_revision, decision.approver) == (EnforcementMode.ENFORCE, 2, "bob")
    assert signing.signature_problem(decision, PROMOTION_KEY.encode()) is None
