"""The enforcer stage itself (a real Faust worker on a real broker) freezing an enforced agent's
policies, moving them only on a signed accept, and putting a rollout back in audit under them;
every Kubernetes document of the stored bundles is valid against its schema."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from runward.core import signing
from runward.core.contracts import (
    ApdRevision,
    EnforcementMode,
    PodTemplateRevision,
    PromotionDecision,
    WindowStatus,
    utcnow,
)
from runward.core.store import Store
from runward.core.topics import APD, PROMOTIONS, PROOFS
from tests.bom.stage_util import own_broker, publish, running_stages
from tests.enforcer.proofs import proof_of
from tests.k8s_schemas import problems

D = "agents/frozen"
KEY = "promotion-key-of-the-policies-stage-test-0123456789"
NOW = utcnow()
SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "frozen"}}
V1 = PodTemplateRevision(template_hash="sha256:" + "1" * 64, pod_template_hash="6f7c9d8b4")
V2 = PodTemplateRevision(template_hash="sha256:" + "2" * 64, pod_template_hash="84b5d9c7f")
OPENAI, MCP = "egress:api.openai.com:443/tcp", "egress:crm-mcp.tools.svc.cluster.local:8080/tcp"


def apd(revision: int, egress: list[str], rev: PodTemplateRevision = V1) -> ApdRevision:
    return ApdRevision(
        deployment=D,
        revision=revision,
        created_at=NOW,
        autonomy="low",
        window_started_at=NOW - timedelta(days=3),
        window_ends_at=NOW - timedelta(minutes=1),
        window_status=WindowStatus.COMPLETE,
        behaviours={"egress": egress, "dns": ["dns:api.openai.com"], "syscalls": ["syscall:read"]},
        pod_selector=SELECTOR,
        deployment_revision=rev,
    )


def decision(mode: EnforcementMode, reason: str, accept: int | None = None) -> PromotionDecision:
    unsigned = PromotionDecision(
        deployment=D, mode=mode, approver="bob", reason=reason, ts=utcnow(), accept_apd_revision=accept
    )
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
    home = tmp_path_factory.mktemp("enforcer-policies")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNWARD_PROMOTION_KEY", KEY)
        env.setenv("RUNWARD_AUDIT_SOAK_S", "0")  # the soak is the go-live e2e's subject, not this test's
        with own_broker(home) as bootstrap, running_stages(["enforcer"], bootstrap, home) as db_url:
            yield bootstrap, Store(db_url)


def bundle_at(store: Store, revision: int) -> Callable[[], dict[str, Any] | None]:
    def latest() -> dict[str, Any] | None:
        found = store.latest_artifact(D, "policy")
        return found if found and found["revision"] >= revision else None

    return latest


def ready_for_enforce(store: Store) -> None:
    """The evidence the enforcer's readiness check of enforce reads (services.enforcer.readiness_inputs):
    what the bom stage and `runward reconcile` would have stored (the proof comes on runward.proofs)."""
    store.touch_agent(D, "frozen-sa", NOW)
    store.put_artifact(D, "bom_delta", 1, NOW, {"deployment": D, "revision": 1, "findings": []})
    store.put_artifact(D, "reconciliation", 1, NOW, {"kubernetes": {"unused_count": 0}})


def prove(bootstrap: str, store: Store, rev: ApdRevision, revision: int) -> dict[str, Any]:
    """A passing proof of `rev`, signed as the API signs it: the enforcer takes it (a new bundle)."""
    publish(bootstrap, PROOFS, [(D, signing.sign(proof_of(rev), KEY.encode()))])
    found: dict[str, Any] = wait_for(
        f"no bundle after the proof of APD revision {rev.revision}", bundle_at(store, revision)
    )
    return found


def valid(bundle: dict[str, Any]) -> None:
    kinds = ("network_policy", "cilium_network_policy", "calico_policy", "seccomp_profile_object")
    for doc in (bundle[k] for k in kinds if bundle[k] is not None):
        assert problems(doc) == [], f"{doc['kind']} of bundle {bundle['revision']} is not valid"


def test_enforced_policies_freeze_move_on_accept_and_a_rollout_goes_back_to_audit(
    enforcer: tuple[str, Store],
) -> None:
    bootstrap, store = enforcer
    publish(bootstrap, APD, [(D, apd(1, [OPENAI]))])
    observe = wait_for("no observe bundle", bundle_at(store, 1))
    assert observe["mode"] == "observe" and observe["network_policy"] is None and observe["calico_policy"] is None
    assert observe["deployment_revision"]["pod_template_hash"] == "6f7c9d8b4"

    publish(bootstrap, PROMOTIONS, [(D, decision(EnforcementMode.AUDIT, "window complete"))])
    audit = wait_for("no audit bundle", bundle_at(store, 2))
    assert audit["mode"] == "audit" and audit["calico_policy"]["kind"] == "StagedNetworkPolicy"
    valid(audit)
    ready_for_enforce(store)
    assert prove(bootstrap, store, apd(1, [OPENAI]), 3)["proof"]["apd_revision"] == 1  # audit: the latest proof
    publish(bootstrap, PROMOTIONS, [(D, decision(EnforcementMode.ENFORCE, "audit clean"))])
    enforce = wait_for("no enforce bundle", bundle_at(store, 4))
    assert enforce["mode"] == "enforce" and enforce["network_policy"]["spec"]["podSelector"] == SELECTOR
    valid(enforce)

    # The profiler learns more (a new in-cluster MCP server): the enforced policies do not widen.
    publish(bootstrap, APD, [(D, apd(2, [OPENAI, MCP]))])
    frozen = wait_for("no bundle for APD revision 2", bundle_at(store, 5))
    assert (frozen["mode"], frozen["apd_revision"], frozen["latest_apd_revision"]) == ("enforce", 1, 2)
    assert frozen["pending_widening"] == {"egress": [MCP]}
    assert frozen["network_policy"] == enforce["network_policy"]

    # Revision 2 is proven, the approver accepts it (signed): the namespace peer of the MCP server appears.
    still = prove(bootstrap, store, apd(2, [OPENAI, MCP]), 6)
    assert still["mode"] == "enforce" and still["network_policy"] == enforce["network_policy"]
    assert still["proof"]["apd_revision"] == 1  # an enforce bundle carries the proof its policies stand on
    publish(bootstrap, PROMOTIONS, [(D, decision(EnforcementMode.ENFORCE, "mcp reviewed", accept=2))])
    accepted = wait_for("no bundle after the accept", bundle_at(store, 7))
    assert (accepted["mode"], accepted["apd_revision"], accepted["pending_widening"]) == ("enforce", 2, {})
    assert accepted["proof"]["apd_revision"] == 2
    peers = [p for r in accepted["network_policy"]["spec"]["egress"] for p in r["to"]]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tools"}}} in peers
    valid(accepted)

    # A rollout of a new revision: audit under the accepted policies until promoted again.
    publish(bootstrap, APD, [(D, apd(3, [OPENAI, MCP], rev=V2))])
    rolled = wait_for("no bundle after the rollout", bundle_at(store, 8))
    assert rolled["mode"] == "audit" and rolled["apd_revision"] == 2
    assert rolled["deployment_revision"]["pod_template_hash"] == "6f7c9d8b4"
    assert "84b5d9c7f rolled out" in rolled["mode_reason"]
    assert rolled["network_policy"] is None and rolled["seccomp_profile"]["defaultAction"] == "SCMP_ACT_LOG"
    valid(rolled)
