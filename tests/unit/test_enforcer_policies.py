from __future__ import annotations

from datetime import datetime, timezone

from kubernetes.client import ApiClient, V1NetworkPolicy

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PromotionDecision,
    WindowStatus,
)
from services.enforcer.domain import EnforcerState, apply

T = datetime(2026, 1, 9, tzinfo=timezone.utc)


def apd(revision: int = 1) -> ApdRevision:
    return ApdRevision(
        deployment="agents/bot",
        revision=revision,
        created_at=T,
        autonomy="low",
        window_started_at=T,
        window_ends_at=T,
        window_status=WindowStatus.COMPLETE,
        behaviours={
            "egress": ["egress:api.openai.com:443/tcp"],
            "egress_ip": ["162.159.140.245:443/tcp", "2606:4700::6810:84e5:443/tcp"],
            "dns": ["dns:api.openai.com"],
            "ingress": ["ingress:8080/tcp"],
            "syscalls": ["syscall:openat", "syscall:read"],
        },
    )


def test_network_policy_from_observed_egress_is_a_valid_api_object() -> None:
    state, bundle = apply(None, apd(), T)
    assert bundle is not None
    policy = bundle.network_policy
    assert policy["apiVersion"] == "networking.k8s.io/v1" and policy["kind"] == "NetworkPolicy"
    rules = policy["spec"]["egress"]
    assert rules[0]["to"] == [
        {"ipBlock": {"cidr": "162.159.140.245/32"}},
        {"ipBlock": {"cidr": "2606:4700::6810:84e5/128"}},
    ]
    assert rules[0]["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert rules[1]["ports"][0] == {"port": 53, "protocol": "UDP"}  # cluster DNS
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    assert policy["metadata"]["annotations"]["runward.io/egress-fqdns"] == "api.openai.com:443/tcp"
    # The kubernetes client reads it back as its own model.
    api = ApiClient()
    model = api._ApiClient__deserialize(policy, V1NetworkPolicy)  # type: ignore[attr-defined]
    assert model.spec.policy_types == ["Ingress", "Egress"]


def test_seccomp_follows_the_promoted_mode() -> None:
    state, bundle = apply(None, apd(), T)
    assert bundle and bundle.seccomp_profile["defaultAction"] == "SCMP_ACT_LOG"
    assert bundle.seccomp_profile["syscalls"] == [{"names": ["openat", "read"], "action": "SCMP_ACT_ALLOW"}]
    for mode in (EnforcementMode.AUDIT, EnforcementMode.ENFORCE):  # the gate wants audit before enforce
        decision = PromotionDecision(deployment="agents/bot", mode=mode, approver="lead", reason="r", ts=T)
        state, bundle = apply(state, decision, T)
    assert bundle and bundle.mode is EnforcementMode.ENFORCE and bundle.revision == 3
    assert bundle.seccomp_profile["defaultAction"] == "SCMP_ACT_ERRNO"


def test_stale_apd_and_unchanged_stories_produce_nothing() -> None:
    state, _ = apply(None, apd(2), T)
    state, bundle = apply(state, apd(1), T)
    assert bundle is None
    story = AttackStory(
        story_id="s1",
        deployment="agents/bot",
        version=1,
        first_seen=T,
        last_seen=T,
        status="potential compromise",
        severity=4,
        surfaces=[],
        techniques=[],
        narrative=[],
        signals=[],
        ocsf={},
    )
    state, bundle = apply(state, story, T)
    assert bundle and bundle.open_stories == ["s1"]
    state, bundle = apply(state, story, T)
    assert bundle is None


def test_nothing_before_an_apd_exists() -> None:
    story = AttackStory(
        story_id="s1",
        deployment="agents/bot",
        version=1,
        first_seen=T,
        last_seen=T,
        status="potential compromise",
        severity=4,
        surfaces=[],
        techniques=[],
        narrative=[],
        signals=[],
        ocsf={},
    )
    state, bundle = apply(None, story, T)
    assert bundle is None and state.open_stories == ["s1"]
    assert isinstance(state, EnforcerState)
