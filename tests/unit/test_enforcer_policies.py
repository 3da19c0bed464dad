from __future__ import annotations

from datetime import datetime, timezone

import pytest
from kubernetes.client import ApiClient, V1NetworkPolicy

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    Dns,
    Egress,
    EnforcementMode,
    Ingress,
    PolicyProof,
    PromotionDecision,
    StoryStatus,
    Syscall,
    WindowStatus,
)
from runward.core.signing import profile_sha256
from services.enforcer.domain import EnforcerState, apply
from services.enforcer.policies import egress_allowlist, learnt, network_policy, seccomp_profile

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
            "egress": [Egress(host="api.openai.com", port=443).key],
            "egress_ip": [Egress(host=a, port=443).endpoint for a in ("162.159.140.245", "2606:4700::6810:84e5")],
            "dns": [Dns(name="api.openai.com").key],
            "ingress": [Ingress(port=8080).key],
            "syscalls": [Syscall(name="openat").key, Syscall(name="read").key],
        },
    )


def test_the_apd_keys_the_enforcer_reads_are_todays_stored_strings() -> None:
    assert apd().behaviours["egress"] == ["egress:api.openai.com:443/tcp"]
    assert apd().behaviours["egress_ip"] == ["162.159.140.245:443/tcp", "2606:4700::6810:84e5:443/tcp"]
    assert learnt(apd(), Ingress) == [Ingress(port=8080, protocol="tcp")]
    assert egress_allowlist(apd()) == ["api.openai.com:443/tcp"]


@pytest.mark.parametrize(
    ("category", "entry", "reason"),
    [
        ("egress", "dns:api.openai.com", "APD agents/bot revision 1 holds 'dns:api.openai.com' under 'egress'"),
        ("syscalls", "openat", "behaviour key 'openat' has no known kind"),
        ("egress_ip", "162.159.140.245/tcp", "behaviour key 'egress:162.159.140.245/tcp' is not a valid egress"),
    ],
)
def test_a_corrupt_apd_entry_fails_loudly_naming_it(category: str, entry: str, reason: str) -> None:
    corrupt = apd().model_copy(update={"behaviours": {**apd().behaviours, category: [entry]}})
    with pytest.raises(ValueError, match=reason):
        network_policy(corrupt, EnforcementMode.AUDIT, {}) if category != "syscalls" else learnt(corrupt, Syscall)


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
        if mode is EnforcementMode.ENFORCE:  # ... and a passing proof of the enforce profile
            profile = seccomp_profile(apd(), EnforcementMode.ENFORCE, ["execve"])
            proof = PolicyProof(
                deployment="agents/bot",
                apd_revision=1,
                profile_sha256=profile_sha256(profile),
                passed=True,
                ran_at=T,
                runtime="runc 1.1.5",
                runtime_syscalls=["execve"],
            )
            state, _ = apply(state, proof, T)
        decision = PromotionDecision(deployment="agents/bot", mode=mode, approver="lead", reason="r", ts=T)
        state, bundle = apply(state, decision, T)
    assert bundle and bundle.mode is EnforcementMode.ENFORCE and bundle.revision == 4
    assert bundle.seccomp_profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert bundle.seccomp_profile["syscalls"][0]["names"] == ["execve", "openat", "read"]


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
        status=StoryStatus.POTENTIAL_COMPROMISE,
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
    # The same story re-published as expected drift no longer holds the gate.
    drift = story.model_copy(update={"version": 2, "status": StoryStatus.EXPECTED_DRIFT})
    state, bundle = apply(state, drift, T)
    assert bundle and bundle.open_stories == []


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
