"""The rendering of an APD into the documents a cluster enforces: who is selected (the
Deployment's real selector), where traffic may go (in-cluster by namespace, external by name or
address), DNS, and what each mode emits. Every emitted document is validated strictly against the
Kubernetes schemas (kubernetes-validate) and the vendored CRDs (Cilium, Calico, SPO)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from kubernetes.client import ApiClient, V1NetworkPolicy

from runward.core.contracts import (
    ApdRevision,
    Dns,
    Egress,
    EnforcementMode,
    Ingress,
    PromotionDecision,
    StoryStatus,
    Syscall,
    WindowStatus,
)
from services.enforcer.cni import calico_policy, calico_selector, cilium_network_policy
from services.enforcer.domain import EnforcerState, apply
from services.enforcer.policies import destinations, egress_allowlist, in_cluster_namespace, learnt, network_policy
from services.enforcer.readiness import ReadinessReport
from services.enforcer.workload import deployment_patch, seccomp_profile_object
from tests.enforcer.proofs import proof_of
from tests.enforcer.stories import story_of
from tests.k8s_schemas import problems

T = datetime(2026, 1, 9, tzinfo=timezone.utc)
SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "bot", "app.kubernetes.io/instance": "bot-prod"}}


def apd(revision: int = 1, selector: dict[str, Any] | None = SELECTOR) -> ApdRevision:
    return ApdRevision(
        deployment="agents/bot",
        revision=revision,
        created_at=T,
        autonomy="low",
        window_started_at=T,
        window_ends_at=T,
        window_status=WindowStatus.COMPLETE,
        behaviours={
            "egress": [
                Egress(host="api.openai.com", port=443).key,
                Egress(host="crm-mcp.tools.svc.cluster.local", port=8080).key,
                Egress(host="vectors.data.svc", port=6333).key,
            ],
            "egress_ip": [Egress(host=a, port=443).endpoint for a in ("162.159.140.245", "2606:4700::6810:84e5")],
            "dns": [Dns(name="api.openai.com").key],
            "ingress": [Ingress(port=8080).key],
            "syscalls": [Syscall(name="openat").key, Syscall(name="read").key],
        },
        pod_selector=selector,
    )


def promoted(mode: EnforcementMode, record: ApdRevision | None = None) -> EnforcerState:
    state, _ = apply(None, record or apd(), T)
    steps = {EnforcementMode.OBSERVE: 0, EnforcementMode.AUDIT: 1, EnforcementMode.ENFORCE: 2}[mode]
    for step in (EnforcementMode.AUDIT, EnforcementMode.ENFORCE)[:steps]:
        if step is EnforcementMode.ENFORCE:  # enforce needs a passing proof of its profile
            state, _ = apply(state, proof_of(record or apd(), runtime=()), T)
        decision = PromotionDecision(deployment="agents/bot", mode=step, approver="a", reason="r", ts=T)
        # A readiness report with nothing failing: these tests are about the policies, not the gate.
        ready = ReadinessReport(deployment="agents/bot", target=step, mode=state.mode, computed_at=T)
        state, _ = apply(state, decision, T, ready)
    return state


def test_the_apd_keys_the_enforcer_reads_are_todays_stored_strings() -> None:
    assert apd().behaviours["egress_ip"] == ["162.159.140.245:443/tcp", "2606:4700::6810:84e5:443/tcp"]
    assert learnt(apd(), Ingress) == [Ingress(port=8080, protocol="tcp")]
    assert egress_allowlist(apd())[0] == "api.openai.com:443/tcp"


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
        network_policy(corrupt, EnforcementMode.ENFORCE) if category != "syscalls" else learnt(corrupt, Syscall)


@pytest.mark.parametrize(
    ("host", "namespace"),
    [
        ("crm-mcp.tools.svc.cluster.local", "tools"),
        ("vectors.data.svc", "data"),
        ("10-1-2-3.data.pod.cluster.local", "data"),
        ("api.openai.com", None),
        ("svc.example.svc.evil.com", None),  # looks in-cluster, is not: never a namespace peer
        ("10.0.0.7", None),
    ],
)
def test_in_cluster_names_are_told_from_external_ones(host: str, namespace: str | None) -> None:
    assert in_cluster_namespace(host) == namespace


def test_destinations_by_what_a_cluster_can_enforce() -> None:
    found = destinations(apd())
    assert found.namespaces == {(8080, "TCP"): {"tools"}, (6333, "TCP"): {"data"}}
    assert found.fqdns == {(443, "TCP"): {"api.openai.com"}}
    assert found.cidrs == {(443, "TCP"): {"162.159.140.245/32", "2606:4700::6810:84e5/128"}}
    assert found.dns and found.ingress == [(8080, "TCP")]


def test_network_policy_selects_the_deployments_real_pods() -> None:
    policy = network_policy(apd(), EnforcementMode.ENFORCE)
    assert policy is not None
    # The Deployment's selector, app.kubernetes.io/name included: never a guessed {app: bot}.
    assert policy["spec"]["podSelector"] == SELECTOR
    expressions = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["agent"]}]}
    with_expressions = network_policy(apd(selector=expressions), EnforcementMode.ENFORCE)
    assert with_expressions and with_expressions["spec"]["podSelector"] == expressions
    # No selector known (no watcher): no policy rather than one that selects the wrong pods.
    assert network_policy(apd(selector=None), EnforcementMode.ENFORCE) is None


def test_network_policy_peers_in_cluster_by_namespace_external_by_address_and_dns() -> None:
    policy = network_policy(apd(), EnforcementMode.ENFORCE)
    assert policy is not None
    rules = policy["spec"]["egress"]
    ns_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}}}
    assert {"to": [ns_peer], "ports": [{"port": 6333, "protocol": "TCP"}]} in rules
    assert {
        "to": [{"ipBlock": {"cidr": "162.159.140.245/32"}}, {"ipBlock": {"cidr": "2606:4700::6810:84e5/128"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    } in rules
    dns = rules[-1]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert not any("ipBlock" in p for r in rules for p in r["to"] if "svc" in str(p))
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    model = ApiClient()._ApiClient__deserialize(policy, V1NetworkPolicy)  # type: ignore[attr-defined]
    assert model.spec.policy_types == ["Ingress", "Egress"]


def test_cilium_names_external_destinations_and_resolves_through_its_dns_proxy() -> None:
    policy = cilium_network_policy(apd(), EnforcementMode.ENFORCE)
    assert policy is not None
    spec = policy["spec"]
    assert spec["endpointSelector"] == SELECTOR
    assert spec["enableDefaultDeny"] == {"egress": True, "ingress": True}
    fqdn = next(r for r in spec["egress"] if "toFQDNs" in r)
    assert fqdn == {
        "toFQDNs": [{"matchName": "api.openai.com"}],
        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
    }
    dns = spec["egress"][0]
    assert dns["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert {
        "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "tools"}}],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
    } in spec["egress"]


def test_calico_selector_syntax() -> None:
    assert calico_selector(SELECTOR) == "app.kubernetes.io/instance == 'bot-prod' && app.kubernetes.io/name == 'bot'"
    assert (
        calico_selector(
            {
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["a", "b"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ]
            }
        )
        == "tier in {'a', 'b'} && !has(canary)"
    )


def test_calico_policy_names_domains() -> None:
    policy = calico_policy(apd(), EnforcementMode.ENFORCE)
    assert policy is not None and policy["kind"] == "NetworkPolicy"
    egress = policy["spec"]["egress"]
    assert {
        "action": "Allow",
        "protocol": "TCP",
        "destination": {"domains": ["api.openai.com"], "ports": [443]},
    } in egress
    assert {
        "action": "Allow",
        "protocol": "TCP",
        "destination": {"namespaceSelector": "kubernetes.io/metadata.name == 'tools'", "ports": [8080]},
    } in egress
    assert [r["protocol"] for r in egress[:2]] == ["UDP", "TCP"] and egress[0]["destination"]["ports"] == [53]


def documents(state: EnforcerState) -> dict[str, dict[str, Any] | None]:
    _, bundle = apply(state, apd(state.apd.revision + 1 if state.apd else 1), T)
    assert bundle is not None
    return {
        "network_policy": bundle.network_policy,
        "cilium_network_policy": bundle.cilium_network_policy,
        "calico_policy": bundle.calico_policy,
        "seccomp_profile_object": bundle.seccomp_profile_object,
        "deployment_patch": bundle.deployment_patch,
    }


def test_each_mode_emits_what_it_can_apply_without_breaking_the_agent() -> None:
    observe = documents(promoted(EnforcementMode.OBSERVE))
    assert all(doc is None for doc in observe.values()), "observe applies nothing"

    audit = documents(promoted(EnforcementMode.AUDIT))
    assert audit["network_policy"] is None, "core NetworkPolicy has no audit mode: applying it enforces"
    assert audit["calico_policy"] and audit["calico_policy"]["kind"] == "StagedNetworkPolicy"
    assert audit["calico_policy"]["spec"]["stagedAction"] == "Set"
    cilium = audit["cilium_network_policy"]
    assert cilium and cilium["spec"]["enableDefaultDeny"] == {"egress": False, "ingress": False}
    assert "policy-audit-mode" in cilium["metadata"]["annotations"]["runward.io/audit"]
    assert (
        audit["seccomp_profile_object"] and audit["seccomp_profile_object"]["spec"]["defaultAction"] == "SCMP_ACT_LOG"
    )

    enforce = documents(promoted(EnforcementMode.ENFORCE))
    assert enforce["network_policy"] and enforce["network_policy"]["kind"] == "NetworkPolicy"
    assert enforce["calico_policy"] and enforce["calico_policy"]["kind"] == "NetworkPolicy"
    assert "stagedAction" not in enforce["calico_policy"]["spec"]
    assert enforce["seccomp_profile_object"]
    assert enforce["seccomp_profile_object"]["spec"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert enforce["seccomp_profile_object"]["spec"]["syscalls"] == [
        {"names": ["openat", "read"], "action": "SCMP_ACT_ALLOW"}
    ]


def test_the_seccomp_patch_points_the_pods_at_the_operators_profile() -> None:
    patch = deployment_patch(apd(), EnforcementMode.ENFORCE)
    profile = seccomp_profile_object(apd(), EnforcementMode.ENFORCE)
    assert patch and profile
    assert patch["metadata"] == {"name": "bot", "namespace": "agents"}
    context = patch["spec"]["template"]["spec"]["securityContext"]
    name, namespace = profile["metadata"]["name"], profile["metadata"]["namespace"]
    assert context == {"seccompProfile": {"type": "Localhost", "localhostProfile": f"operator/{namespace}/{name}.json"}}


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}
    return patch


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bot", "namespace": "agents"},
    "spec": {
        "selector": SELECTOR,
        "template": {
            "metadata": {"labels": SELECTOR["matchLabels"]},
            "spec": {"containers": [{"name": "bot", "image": "ghcr.io/acme/bot@sha256:" + "a" * 64}]},
        },
    },
}


@pytest.mark.parametrize("mode", [EnforcementMode.AUDIT, EnforcementMode.ENFORCE])
def test_every_emitted_document_is_valid_against_its_schema(mode: EnforcementMode) -> None:
    docs = {k: v for k, v in documents(promoted(mode)).items() if v is not None}
    assert {"cilium_network_policy", "calico_policy", "seccomp_profile_object", "deployment_patch"} <= docs.keys()
    patched = _merge(DEPLOYMENT, docs.pop("deployment_patch"))
    assert patched["spec"]["template"]["spec"]["containers"] == DEPLOYMENT["spec"]["template"]["spec"]["containers"]
    for name, doc in [*docs.items(), ("patched Deployment", patched)]:
        assert problems(doc) == [], f"{name} ({doc['kind']}) is not valid"


def test_the_schema_check_is_strict() -> None:
    """A field the CRD does not declare is refused, not silently pruned as the API server would."""
    cilium = cilium_network_policy(apd(), EnforcementMode.ENFORCE)
    calico = calico_policy(apd(), EnforcementMode.AUDIT)
    spo = seccomp_profile_object(apd(), EnforcementMode.ENFORCE)
    policy = network_policy(apd(), EnforcementMode.ENFORCE)
    assert cilium and calico and spo and policy
    cilium["spec"]["egress"][1]["toFQDN"] = cilium["spec"]["egress"][1].pop("toFQDNs")
    calico["spec"]["egress"][2]["destination"]["domain"] = ["x.example"]
    spo["spec"]["defaultAction"] = "SCMP_ACT_DENY"
    policy["spec"]["podSelector"]["matchLabel"] = {"a": "b"}
    for doc in (cilium, calico, spo, policy):
        assert problems(doc), f"{doc['kind']} with a bad field passed"


def test_stale_apd_and_unchanged_stories_produce_nothing() -> None:
    state, _ = apply(None, apd(2), T)
    state, bundle = apply(state, apd(1), T)
    assert bundle is None
    story = story_of("agents/bot", "s1", StoryStatus.POTENTIAL_COMPROMISE, T)
    state, bundle = apply(state, story, T)
    assert bundle and bundle.open_stories == ["s1"]
    state, bundle = apply(state, story, T)
    assert bundle is None
    drift = story.model_copy(update={"version": 2, "status": StoryStatus.EXPECTED_DRIFT})
    state, bundle = apply(state, drift, T)
    assert bundle and bundle.open_stories == []
