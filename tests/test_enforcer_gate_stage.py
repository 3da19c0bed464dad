"""The promotion gate held by the enforcer stage itself (a real Faust worker on a real broker):
a decision written straight to runward.promotions without the API's signature is refused,
dead-lettered and raised as an identity signal the correlator tells as a story; a signed one the
gate refuses changes nothing and is dead-lettered with the gate's reasons; one the API accepted
moves the agent's policy bundle."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.core import signing
from runward.core.config import Settings
from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyProof,
    PromotionDecision,
    WindowStatus,
    utcnow,
)
from runward.core.store import Store, history
from runward.core.topics import APD, ATTACK_STORIES, DEAD_LETTER, PROMOTIONS, PROOFS, SIGNALS
from services.enforcer.promotion_gate import enforce_profile
from tests.bom.stage_util import own_broker, publish, running_stages
from tests.kafka_reading import read_records

D = "agents/gated"
TOKEN = "approve-0c6e2b9a54f17d3e"
KEY = "promotion-key-of-the-gate-stage-test-0123456789"
NOW = utcnow()


def apd(revision: int, status: WindowStatus) -> ApdRevision:
    return ApdRevision(
        deployment=D,
        revision=revision,
        created_at=NOW,
        autonomy="low",
        window_started_at=NOW - timedelta(days=3),
        window_ends_at=NOW - timedelta(minutes=1),
        window_status=status,
        behaviours={"egress": ["egress:api.openai.com:443/tcp"], "syscalls": ["syscall:read"]},
    )


def decision(mode: EnforcementMode, reason: str) -> PromotionDecision:
    """Signed with the API's key: what reaches the gate (a decision the API made on stale state)."""
    unsigned = PromotionDecision(deployment=D, mode=mode, approver="mallory", reason=reason, ts=utcnow())
    return signing.sign(unsigned, KEY.encode())


def wait_for(what: str, found: Callable[[], Any], timeout: float = 45) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def enforcer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    home = tmp_path_factory.mktemp("enforcer-stage")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNWARD_PROMOTION_KEY", KEY)
        with own_broker(home) as bootstrap, running_stages(["enforcer", "correlator"], bootstrap, home) as db_url:
            yield bootstrap, Store(db_url)


def policy_at(store: Store, revision: int) -> dict[str, Any] | None:
    latest = store.latest_artifact(D, "policy")
    return latest if latest and latest["revision"] >= revision else None


def refusal(bootstrap: str, reason: str) -> dict[str, Any]:
    (letter,) = [
        v
        for _, v in read_records(
            bootstrap,
            DEAD_LETTER.name,
            lambda v: v["stage"] == "enforcer" and reason in v["payload"],
            want=1,
            timeout=45,
        )
    ]
    return letter


def test_the_enforcer_holds_the_gate_whoever_writes_the_decision(enforcer: tuple[str, Store]) -> None:
    bootstrap, store = enforcer
    # A learning baseline: the enforcer derives an observe bundle from it.
    publish(bootstrap, APD, [(D, apd(1, WindowStatus.LEARNING))])
    first = wait_for("no policy bundle from the first APD", lambda: policy_at(store, 1))
    assert first["mode"] == "observe"

    # Straight to the topic, past the API: refused, dead-lettered with the gate's reasons.
    publish(bootstrap, PROMOTIONS, [(D, decision(EnforcementMode.ENFORCE, "skip the queue"))])
    letter = refusal(bootstrap, "skip the queue")
    assert letter["source"]["topic"] == PROMOTIONS.name and letter["key"] == D
    assert letter["reason"].startswith(f"promotion of {D} from observe to enforce (approver mallory) refused")
    assert "the observation window of APD revision 1 is learning, not complete" in letter["reason"]
    assert "enforce needs the agent to be in audit mode first; it is in observe" in letter["reason"]
    stored = wait_for("the refusal is not in the store", lambda: store.dead_letters("enforcer"))
    assert [(d["topic"], d["offset"], d["reason"]) for d in stored] == [
        (PROMOTIONS.name, letter["source"]["offset"], letter["reason"])
    ]
    assert store.latest_artifact(D, "policy") == first  # nothing changed

    # The window completes; the API (same gate, 409 otherwise) accepts and the enforcer follows.
    complete = apd(2, WindowStatus.COMPLETE)
    publish(bootstrap, APD, [(D, complete)])
    wait_for("no policy bundle from the complete APD", lambda: policy_at(store, 2))
    store.touch_agent(D, "gated-sa", NOW)
    store.put_artifact(D, "apd", 2, complete.created_at, complete.model_dump(mode="json"))
    config = Settings(kafka=bootstrap, api_tokens=f"bob:{TOKEN}:approver", promotion_key=KEY)
    with TestClient(create_app(config, store=store, publisher=KafkaPublisher(bootstrap, timeout_s=15))) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        refused = client.post(
            "/v1/agents/agents/gated/promotion", headers=auth, json={"mode": "enforce", "reason": "r"}
        )
        assert refused.status_code == 409
        assert "enforce needs the agent to be in audit mode first; it is in observe" in refused.json()["reasons"]
        accepted = client.post(
            "/v1/agents/agents/gated/promotion", headers=auth, json={"mode": "audit", "reason": "ok"}
        )
        assert accepted.status_code == 202, accepted.text
    audit = wait_for("no policy bundle at audit mode", lambda: policy_at(store, 3))
    assert audit["mode"] == "audit"

    # An open potential compromise holds the gate at the enforcer too.
    story = AttackStory(
        story_id="st-gated",
        deployment=D,
        version=1,
        first_seen=NOW,
        last_seen=NOW,
        status="potential compromise",
        severity=5,
        surfaces=[],
        techniques=[],
        narrative=["exfiltration"],
        signals=[],
        ocsf={},
    )
    publish(bootstrap, ATTACK_STORIES, [(D, story)])
    held = wait_for("no policy bundle listing the story", lambda: policy_at(store, 4))
    assert held["open_stories"] == ["st-gated"] and held["mode"] == "audit"
    publish(bootstrap, PROMOTIONS, [(D, decision(EnforcementMode.ENFORCE, "while compromised"))])
    letter = refusal(bootstrap, "while compromised")
    assert (
        f"attack story st-gated (severity 5, last seen {NOW.isoformat()}) is an open potential compromise"
        in (letter["reason"])
    )
    assert store.latest_artifact(D, "policy") == held


@pytest.mark.parametrize(
    ("deployment", "signature", "problem"),
    [
        ("agents/forged-a", None, "the decision is not signed by the API"),
        ("agents/forged-b", "hmac-sha256:" + "0" * 64, "the decision's signature does not match"),
    ],
)
def test_a_decision_the_api_did_not_sign_is_refused_and_raised(
    enforcer: tuple[str, Store], deployment: str, signature: str | None, problem: str
) -> None:
    bootstrap, store = enforcer
    forged = PromotionDecision(
        deployment=deployment,
        mode=EnforcementMode.OBSERVE,
        approver="cto@example.com",  # made up: no such approver token exists
        reason=f"forged {deployment}",
        ts=utcnow(),
        signature=signature,
    )
    publish(bootstrap, PROMOTIONS, [(deployment, forged)])
    letter = refusal(bootstrap, f"forged {deployment}")
    assert letter["reason"] == f"promotion of {deployment} to observe refused: " + (
        problem if signature is None else problem + " (not signed by the API with this key, or altered)"
    )
    (signal,) = [
        v for _, v in read_records(bootstrap, SIGNALS.name, lambda v: v["deployment"] == deployment, want=1, timeout=45)
    ]
    assert signal["surface"] == "identity" and signal["severity"] == 4
    assert signal["evidence"]["claimed_approver"] == "cto@example.com"
    assert (
        signal["evidence"]["record"]
        == f"{PROMOTIONS.name}[{letter['source']['partition']}]@{letter['source']['offset']}"
    )
    assert [t["uid"] for t in signal["techniques"]] == ["T1565.001"]
    (story,) = [
        v
        for _, v in read_records(
            bootstrap, ATTACK_STORIES.name, lambda v: v["deployment"] == deployment, want=1, timeout=45
        )
    ]
    assert story["surfaces"] == ["identity"]
    assert signal["signal_id"] in [s["signal_id"] for s in story["signals"]]
    assert store.latest_artifact(deployment, "policy") is None  # the enforcer made nothing of it


def proof_of(rev: ApdRevision, passed: bool = True) -> PolicyProof:
    """What `runward prove` submits (before the API signs it), hashed as the prover hashes."""
    unhashed = PolicyProof(
        deployment=rev.deployment,
        apd_revision=rev.revision,
        profile_sha256="",
        passed=passed,
        ran_at=utcnow(),
        runtime="runc 1.1.5+ds1",
        command=["/usr/bin/python3", "agent.py", "--api-key=sk-proj-Zx81kQ2mN4vB7cL0pR5tY9wE3uI6oA1s"],
        runtime_syscalls=["execve", "fstatfs", "getdents64"],
        summary="passed" if passed else "failed: would be refused: unshare",
        prover="claimed-by-the-body",
    )
    return unhashed.model_copy(update={"profile_sha256": signing.profile_sha256(enforce_profile(rev, unhashed))})


@pytest.mark.parametrize(
    ("deployment", "signature", "problem"),
    [
        ("agents/proof-forged-a", None, "the proof is not signed by the API"),
        ("agents/proof-forged-b", "hmac-sha256:" + "0" * 64, "the proof's signature does not match"),
    ],
)
def test_a_proof_the_api_did_not_sign_is_refused_and_raised(
    enforcer: tuple[str, Store], deployment: str, signature: str | None, problem: str
) -> None:
    bootstrap, store = enforcer
    rev = apd(1, WindowStatus.COMPLETE).model_copy(update={"deployment": deployment})
    publish(bootstrap, APD, [(deployment, rev)])
    wait_for("no bundle from the APD", lambda: store.latest_artifact(deployment, "policy"))
    forged = proof_of(rev).model_copy(update={"signature": signature})
    publish(bootstrap, PROOFS, [(deployment, forged)])
    letter = refusal(bootstrap, deployment)
    assert letter["source"]["topic"] == PROOFS.name
    assert letter["reason"].startswith(f"policy proof of {deployment} (APD revision 1) refused: {problem}")
    (signal,) = [
        v for _, v in read_records(bootstrap, SIGNALS.name, lambda v: v["deployment"] == deployment, want=1, timeout=45)
    ]
    assert signal["surface"] == "identity" and signal["evidence"]["claimed_prover"] == "claimed-by-the-body"
    stored = store.latest_artifact(deployment, "policy")
    assert stored is not None and stored["proof"] is None  # the enforcer kept no forged proof


def test_enforce_is_emitted_only_for_a_proven_profile(enforcer: tuple[str, Store]) -> None:
    bootstrap, store = enforcer
    d = "agents/proven"
    rev = apd(1, WindowStatus.COMPLETE).model_copy(update={"deployment": d})
    publish(bootstrap, APD, [(d, rev)])
    wait_for("no bundle from the APD", lambda: store.latest_artifact(d, "policy"))
    store.touch_agent(d, "proven-sa", NOW)
    store.put_artifact(d, "apd", 1, rev.created_at, rev.model_dump(mode="json"))
    config = Settings(
        kafka=bootstrap,
        api_tokens=f"bob:{TOKEN}:approver,vic:view-8e1d44a0c3b2f761:viewer",
        promotion_key=KEY,
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(config, store=store, publisher=KafkaPublisher(bootstrap, timeout_s=15))) as client:
        assert (
            client.post(f"/v1/agents/{d}/promotion", headers=auth, json={"mode": "audit", "reason": "r"}).status_code
            == 202
        )
        wait_for("no audit bundle", lambda: (store.latest_artifact(d, "policy") or {}).get("mode") == "audit")
        # The gate's readiness beyond the proof is another test's business: the enforcer's own gate is
        # asked here, with a decision the API signed.
        publish(
            bootstrap,
            PROMOTIONS,
            [
                (
                    d,
                    signing.sign(
                        PromotionDecision(
                            deployment=d, mode=EnforcementMode.ENFORCE, approver="bob", reason="unproven", ts=utcnow()
                        ),
                        KEY.encode(),
                    ),
                )
            ],
        )
        letter = refusal(bootstrap, "unproven")
        assert f"no passing proof for APD revision 1: run `runward prove {d}`" in letter["reason"]

        viewer = {"Authorization": "Bearer view-8e1d44a0c3b2f761"}
        body = proof_of(rev).model_dump(mode="json")
        assert client.post(f"/v1/agents/{d}/proofs", headers=viewer, json=body).status_code == 403
        stale = {**body, "apd_revision": 7}
        assert client.post(f"/v1/agents/{d}/proofs", headers=auth, json=stale).status_code == 409
        accepted = client.post(f"/v1/agents/{d}/proofs", headers=auth, json=body)
        assert accepted.status_code == 202, accepted.text
        signed = PolicyProof.model_validate(accepted.json())
        assert signed.prover == "bob" and signing.signature_problem(signed, KEY.encode()) is None
        assert "Zx81kQ2mN4vB7cL0pR5tY9wE3uI6oA1s" not in accepted.text and signed.command[:2] == body["command"][:2]

    carried = wait_for("no bundle carrying the proof", lambda: (store.latest_artifact(d, "policy") or {}).get("proof"))
    assert carried["profile_sha256"] == body["profile_sha256"] and carried["prover"] == "bob"
    publish(
        bootstrap,
        PROMOTIONS,
        [
            (
                d,
                signing.sign(
                    PromotionDecision(
                        deployment=d,
                        mode=EnforcementMode.ENFORCE,
                        approver="bob",
                        reason="after the proof",
                        ts=utcnow(),
                    ),
                    KEY.encode(),
                ),
            )
        ],
    )
    # The proof no longer holds the gate; the enforcer's readiness (soak, AI-BOM review, ...) still
    # does here, which is its own business (the enforce bundle with the proof: tests/unit).
    letter = refusal(bootstrap, "after the proof")
    assert "no passing proof" not in letter["reason"] and "readiness check" in letter["reason"]
    assert [e["kind"] for e in history.entries(store, d)] == ["promotion", "proof"]
