"""Go-live end to end: an agent goes from observe towards enforce only through readiness checks
that pass for the right reasons, and each shortcut is refused with its reason by BOTH the API
(409) and the enforcer stage (a real Faust worker on a real broker), which dead-letters a
correctly signed decision written straight to runward.promotions past the API's check.

The shortcuts: an open potential compromise, no audit soak, a shared ServiceAccount without a
waiver, unproven policies. The stages that would write the APD, the AI-BOM delta and the
reconciliation report are stood in for by publishing/storing their records (what the profiler,
the bom stage and `runward reconcile` write); the story is resolved through the API, which
re-publishes it to the enforcer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
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
from runward.core.store import Store
from runward.core.topics import APD, ATTACK_STORIES, DEAD_LETTER, PROMOTIONS, PROOFS
from services.enforcer.policies import seccomp_profile
from tests.bom.stage_util import own_broker, publish, running_stages
from tests.kafka_reading import read_records

D = "golive/agent"
TWIN = "golive/twin"  # another agent that runs as the same ServiceAccount
SA = "agent-sa"
KEY = "promotion-key-of-the-golive-e2e-0123456789abcdef"
APPROVER_TOKEN = "approve-e2e-7a1c9d3b5f20"
VIEWER_TOKEN = "view-e2e-4b8e2f6a1c93"
SOAK_S = 6
AUTH = {"Authorization": f"Bearer {APPROVER_TOKEN}"}
VIEW = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
PATH = f"/v1/agents/{D}"
NOW = utcnow()


def complete_apd() -> ApdRevision:
    return ApdRevision(
        deployment=D,
        revision=1,
        created_at=NOW,
        autonomy="low",
        window_started_at=NOW - timedelta(days=3),
        window_ends_at=NOW - timedelta(minutes=1),
        window_status=WindowStatus.COMPLETE,
        behaviours={"egress": ["egress:api.openai.com:443/tcp"], "syscalls": ["syscall:read"]},
    )


def compromise() -> AttackStory:
    return AttackStory(
        story_id="st-golive-e2e",
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


def straight(mode: EnforcementMode, reason: str) -> PromotionDecision:
    """A decision signed with the API's key but written straight to the topic: it skipped the API's
    check (a stale decision replayed, or a signer that does not ask the gate)."""
    return signing.sign(
        PromotionDecision(deployment=D, mode=mode, approver="mallory", reason=reason, ts=utcnow()), KEY.encode()
    )


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f} s")


class Pipeline:
    def __init__(self, bootstrap: str, store: Store, client: TestClient) -> None:
        self.bootstrap, self.store, self.client = bootstrap, store, client

    def bundle(self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60) -> dict[str, Any]:
        def latest() -> dict[str, Any] | None:
            found = self.store.latest_artifact(D, "policy")
            return found if found is not None and match(found) else None

        found: dict[str, Any] = wait_for(what, latest, timeout)
        return found

    def api_refuses(self, mode: str) -> list[str]:
        response = self.client.post(f"{PATH}/promotion", headers=AUTH, json={"mode": mode, "reason": "shortcut"})
        assert response.status_code == 409, response.text
        reasons: list[str] = response.json()["reasons"]
        return reasons

    def enforcer_refuses(self, mode: EnforcementMode, reason: str) -> str:
        """Write a signed decision straight to the topic; the enforcer's dead-letter reason."""
        before = self.store.latest_artifact(D, "policy")
        publish(self.bootstrap, PROMOTIONS, [(D, straight(mode, reason))])
        ((_, letter),) = read_records(
            self.bootstrap,
            DEAD_LETTER.name,
            lambda v: v.get("stage") == "enforcer" and reason in (v.get("payload") or ""),
            want=1,
            timeout=60,
        )
        assert letter["source"]["topic"] == PROMOTIONS.name
        assert self.store.latest_artifact(D, "policy") == before  # the agent kept its mode
        text: str = letter["reason"]
        return text


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    home = tmp_path_factory.mktemp("golive-e2e")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNWARD_PROMOTION_KEY", KEY)
        env.setenv("RUNWARD_AUDIT_SOAK_S", str(SOAK_S))
        with own_broker(home) as bootstrap, running_stages(["enforcer"], bootstrap, home) as db_url:
            store = Store(db_url)
            config = Settings(
                kafka=bootstrap,
                api_tokens=f"ada:{APPROVER_TOKEN}:approver,vic:{VIEWER_TOKEN}:viewer",
                promotion_key=KEY,
                audit_soak_s=SOAK_S,
            )
            app = create_app(config, store=store, publisher=KafkaPublisher(bootstrap, timeout_s=15))
            with TestClient(app) as client:
                yield Pipeline(bootstrap, store, client)


def test_observe_to_enforce_only_through_readiness_and_every_shortcut_refused_twice(pipeline: Pipeline) -> None:
    store = pipeline.store
    # What the profiler, the bom stage and `runward reconcile` would have written: a complete
    # baseline, an AI-BOM delta with nothing undeclared, a least-privilege reconciliation.
    store.touch_agent(D, SA, NOW - timedelta(days=4))
    store.touch_agent(TWIN, SA, NOW - timedelta(days=4))
    apd = complete_apd()
    store.put_artifact(D, "apd", 1, apd.created_at, apd.model_dump(mode="json"))
    store.put_artifact(D, "bom_delta", 1, NOW, {"deployment": D, "revision": 1, "findings": []})
    store.put_artifact(D, "reconciliation", 1, NOW, {"kubernetes": {"unused_count": 0}, "aws": {"unused_count": 0}})
    publish(pipeline.bootstrap, APD, [(D, apd)])
    pipeline.bundle(lambda b: b["mode"] == "observe", "no observe bundle from the complete APD")

    # Shortcut 1: an open potential compromise (the correlator stores and publishes it).
    story = compromise()
    store.put_story(story)
    publish(pipeline.bootstrap, ATTACK_STORIES, [(D, story)])
    pipeline.bundle(lambda b: b["open_stories"] == [story.story_id], "no bundle holding the story")
    held = "attack story st-golive-e2e (severity 5"
    assert any(r.startswith(held) for r in pipeline.api_refuses("audit"))
    assert held in pipeline.enforcer_refuses(EnforcementMode.AUDIT, "audit despite the open story")

    # The SOC resolves it through the API, which re-publishes it: the enforcer lets go of it.
    resolved = pipeline.client.post(
        f"/v1/stories/{story.story_id}/resolve", headers=AUTH, json={"reason": "red team", "resolution": "benign"}
    )
    assert resolved.status_code == 200, resolved.text
    pipeline.bundle(lambda b: b["open_stories"] == [], "no bundle without the resolved story")
    promoted = pipeline.client.post(f"{PATH}/promotion", headers=AUTH, json={"mode": "audit", "reason": "window done"})
    assert promoted.status_code == 202, promoted.text
    audit = pipeline.bundle(lambda b: b["mode"] == "audit", "no audit bundle after the API's promotion")

    # Shortcut 2: no soak. Both refuse enforce with the soak's reason (it cannot be waived).
    assert "readiness check audit_soak fails" in " | ".join(pipeline.api_refuses("enforce"))
    assert "readiness check audit_soak fails: in audit since" in pipeline.enforcer_refuses(
        EnforcementMode.ENFORCE, "enforce before the soak"
    )

    # Shortcut 3: the soak is over, but the ServiceAccount is shared and nobody waived it.
    soaked_at = time.monotonic() + SOAK_S
    while time.monotonic() < soaked_at:
        time.sleep(0.5)
    api = pipeline.api_refuses("enforce")
    assert not any("audit_soak" in r for r in api), api
    assert any(
        r.startswith(f"readiness check service_account fails: ServiceAccount golive/{SA} is shared") for r in api
    )
    letter = pipeline.enforcer_refuses(EnforcementMode.ENFORCE, "enforce with a shared SA")
    assert f"readiness check service_account fails: ServiceAccount golive/{SA} is shared" in letter
    assert "audit_soak" not in letter

    # The platform team owns the risk: a waiver (who, why, until when), in the go-live history.
    until = (utcnow() + timedelta(days=7)).isoformat()
    waiver = {"check": "service_account", "reason": "twin is being split out (TICKET-12)", "until": until}
    assert pipeline.client.post(f"{PATH}/waivers", headers=AUTH, json=waiver).status_code == 201

    # Shortcut 4: unproven policies (the gate's rule 6). Nothing else holds now, on either side.
    (reason,) = pipeline.api_refuses("enforce")
    assert reason == f"no passing proof for APD revision 1: run `runward prove {D}`"
    letter = pipeline.enforcer_refuses(EnforcementMode.ENFORCE, "enforce unproven")
    assert (
        f"no passing proof for APD revision 1: run `runward prove {D}`" in letter
        and "service_account" not in letter
        and "audit_soak" not in letter
    )
    assert store.latest_artifact(D, "policy") == audit  # still in audit, every shortcut refused

    kinds = [e["kind"] for e in pipeline.client.get("/v1/history", headers=VIEW, params={"deployment": D}).json()]
    assert kinds == ["story_resolution", "promotion", "waiver"]
    assert pipeline.client.get("/v1/history/verify", headers=VIEW).json()["ok"] is True


def sign_proof(proof: PolicyProof) -> PolicyProof:
    """Signed like a promotion decision (runward.core.signing's HMAC over the canonical record)."""
    body = proof.model_dump(mode="json", exclude={"signature"})
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    mac = hmac.new(KEY.encode(), canonical, hashlib.sha256).hexdigest()
    return proof.model_copy(update={"signature": f"hmac-sha256:{mac}"})


def test_a_proven_agent_reaches_enforce_through_api_and_enforcer(pipeline: Pipeline, tmp_path: Path) -> None:
    # Runs after the test above (file order), on the agent it left in audit, soaked, SA waived.
    profile = seccomp_profile(complete_apd(), EnforcementMode.ENFORCE)
    digest = hashlib.sha256(json.dumps(profile, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    proof = PolicyProof(
        deployment=D,
        apd_revision=1,
        profile_sha256=digest,
        egress_allowlist=["api.openai.com:443/tcp"],
        passed=True,
        ran_at=utcnow(),
        runtime="runc",
        summary="the recorded workload ran under the enforce-mode profile",
        prover="Ada",
    )
    publish(pipeline.bootstrap, PROOFS, [(D, sign_proof(proof))])
    pipeline.bundle(lambda b: bool(b.get("proof")), "no bundle carrying the proof", timeout=30)
    promoted = pipeline.client.post(f"{PATH}/promotion", headers=AUTH, json={"mode": "enforce", "reason": "go live"})
    assert promoted.status_code == 202, promoted.text
    pipeline.bundle(lambda b: b["mode"] == "enforce", "no enforce bundle")
