"""Policies from observed behaviour: where the agent's traffic may go, and the core NetworkPolicy
and OCI seccomp profile that say so.

Who the policies select: the Deployment's own `spec.selector` (the APD carries it from the
watcher), never a guessed `app: <name>` label; without it no network policy is rendered.

Where traffic may go (`destinations`), sorted by what a cluster can enforce:
- in-cluster names (`<service>.<namespace>.svc[.cluster.local]`, `<pod>.<namespace>.pod...`) become
  namespace peers (`kubernetes.io/metadata.name`): a Service's ClusterIP does not match an
  ipBlock on most CNIs (the packet is DNAT-ed to a pod first), and the Service's own pod selector
  is not known to runward, so the peer is the namespace on the observed port;
- external names are FQDNs (Cilium `toFQDNs`, Calico `domains`); core NetworkPolicy cannot name
  hosts, so it allows the addresses the names resolved to while observed (the APD's `egress_ip`),
  as /32 or /128;
- a DNS rule to kube-dns whenever the agent resolves names.

Built with the kubernetes client models so the output is the API's own shape. Pure: no I/O.
Behaviour keys are parsed once per distinct list (`learnt`, kept by digest in `memo`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes.client import (
    ApiClient,
    V1IPBlock,
    V1LabelSelector,
    V1LabelSelectorRequirement,
    V1NetworkPolicy,
    V1NetworkPolicyEgressRule,
    V1NetworkPolicyIngressRule,
    V1NetworkPolicyPeer,
    V1NetworkPolicyPort,
    V1NetworkPolicySpec,
    V1ObjectMeta,
)

from runward.core.contracts import (
    ApdRevision,
    Dns,
    Egress,
    EnforcementMode,
    Ingress,
    Syscall,
    ToolCall,
    parse_behaviour,
    parse_endpoint,
)
from services.enforcer.memo import Memo, digest

SERIALIZER = ApiClient()
SECCOMP_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]
CLUSTER_DOMAIN = "cluster.local"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
KUBE_DNS_NAMESPACE = "kube-system"
KUBE_DNS_LABELS = {"k8s-app": "kube-dns"}
MANAGED_BY = {"app.kubernetes.io/managed-by": "runward"}

EGRESS_IP = "egress_ip"
"""The profiler's refinement of each egress: the address it reached, as an `Egress.endpoint`."""

DESTINATION_CATEGORIES = (Egress.CATEGORY, EGRESS_IP, Dns.CATEGORY, Ingress.CATEGORY)
"""The behaviour categories `destinations` reads: what the network documents depend on."""

B = TypeVar("B", Egress, Ingress, Syscall, Dns, ToolCall)
Port = tuple[int, str]  # (port, "TCP" | "UDP")


# Parsed behaviours (frozen models, safe to share) by the digest of their kind and keys: most
# revisions repeat most categories of the one before, and a bundle reads some categories twice.
_LEARNT: Memo[tuple[Any, ...]] = Memo(2048)


def learnt(apd: ApdRevision, kind: type[B]) -> list[B]:
    """The APD's behaviours of one kind, typed; an entry of another kind is a corrupt APD."""
    keys = apd.behaviours.get(kind.CATEGORY, [])
    if not keys:
        return []

    def parse() -> tuple[B, ...]:
        found: list[B] = []
        for key in keys:
            behaviour = parse_behaviour(key)
            if not isinstance(behaviour, kind):
                raise ValueError(
                    f"APD {apd.deployment} revision {apd.revision} holds {key!r} under {kind.CATEGORY!r}; "
                    "only the profiler writes APDs, report it with this revision"
                )
            found.append(behaviour)
        return tuple(found)

    return list(_LEARNT.get(digest(kind.CATEGORY, keys), parse))


def egress_allowlist(apd: ApdRevision) -> list[str]:
    """Every destination the agent reached during observation, by DNS name where it had one."""
    return sorted(b.endpoint for b in learnt(apd, Egress))


def in_cluster_namespace(host: str) -> str | None:
    """The namespace of an in-cluster DNS name (`svc.ns.svc`, `svc.ns.svc.cluster.local`, pod names
    alike); None for anything else (external names, addresses)."""
    labels = host.rstrip(".").lower().split(".")
    if len(labels) < 3 or labels[2] not in {"svc", "pod"}:
        return None
    rest = ".".join(labels[3:])
    return labels[1] if rest in {"", CLUSTER_DOMAIN} else None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def cidr(host: str) -> str:
    ip = ipaddress.ip_address(host)
    return f"{ip}/{32 if ip.version == 4 else 128}"


@dataclass
class Destinations:
    """Where the agent's traffic may go, grouped by port, in the forms a cluster can enforce."""

    namespaces: dict[Port, set[str]] = field(default_factory=dict)
    fqdns: dict[Port, set[str]] = field(default_factory=dict)
    cidrs: dict[Port, set[str]] = field(default_factory=dict)
    dns: bool = False
    ingress: list[Port] = field(default_factory=list)


def destinations(apd: ApdRevision) -> Destinations:
    """The APD's `behaviours` (never its `pending`: drift awaiting approval) as enforceable peers."""
    found = Destinations()
    for egress in learnt(apd, Egress):
        port = (egress.port, egress.protocol.upper())
        namespace = in_cluster_namespace(egress.host)
        if namespace is not None:
            found.namespaces.setdefault(port, set()).add(namespace)
        elif _is_address(egress.host):
            found.cidrs.setdefault(port, set()).add(cidr(egress.host))
        else:
            found.fqdns.setdefault(port, set()).add(egress.host.rstrip(".").lower())
    for peer in (parse_endpoint(entry) for entry in apd.behaviours.get(EGRESS_IP, [])):
        found.cidrs.setdefault((peer.port, peer.protocol.upper()), set()).add(cidr(peer.host))
    found.dns = bool(learnt(apd, Dns) or found.fqdns or found.namespaces)
    found.ingress = sorted({(b.port, b.protocol.upper()) for b in learnt(apd, Ingress)})
    return found


def policy_name(apd: ApdRevision) -> tuple[str, str]:
    namespace, _, name = apd.deployment.partition("/")
    return namespace, f"runward-{name}"


def policy_annotations(apd: ApdRevision, mode: EnforcementMode) -> dict[str, str]:
    return {"runward.io/mode": mode.value, "runward.io/apd-revision": str(apd.revision)}


def label_selector(selector: dict[str, Any]) -> V1LabelSelector:
    """The Deployment's `spec.selector` (API-server JSON) as the client model."""
    return V1LabelSelector(
        match_labels=dict(selector.get("matchLabels") or {}) or None,
        match_expressions=[
            V1LabelSelectorRequirement(key=e["key"], operator=e["operator"], values=e.get("values"))
            for e in selector.get("matchExpressions") or []
        ]
        or None,
    )


def network_policy(apd: ApdRevision, mode: EnforcementMode, found: Destinations | None = None) -> dict[str, Any] | None:
    """The core NetworkPolicy, in enforce mode only (it has no audit mode: applying it enforces),
    and only for a known Deployment selector. `found`: the APD's `destinations`, if known."""
    if mode is not EnforcementMode.ENFORCE or not apd.pod_selector:
        return None
    namespace, name = policy_name(apd)
    found = destinations(apd) if found is None else found
    egress = [
        V1NetworkPolicyEgressRule(
            to=[
                V1NetworkPolicyPeer(namespace_selector=V1LabelSelector(match_labels={NAMESPACE_LABEL: ns}))
                for ns in sorted(namespaces)
            ],
            ports=[V1NetworkPolicyPort(port=port, protocol=protocol)],
        )
        for (port, protocol), namespaces in sorted(found.namespaces.items())
    ]
    egress += [
        V1NetworkPolicyEgressRule(
            to=[V1NetworkPolicyPeer(ip_block=V1IPBlock(cidr=c)) for c in sorted(cidrs)],
            ports=[V1NetworkPolicyPort(port=port, protocol=protocol)],
        )
        for (port, protocol), cidrs in sorted(found.cidrs.items())
    ]
    if found.dns:
        # Names resolve through cluster DNS; without this rule an egress allowlist breaks resolution.
        egress.append(
            V1NetworkPolicyEgressRule(
                to=[
                    V1NetworkPolicyPeer(
                        namespace_selector=V1LabelSelector(match_labels={NAMESPACE_LABEL: KUBE_DNS_NAMESPACE}),
                        pod_selector=V1LabelSelector(match_labels=dict(KUBE_DNS_LABELS)),
                    )
                ],
                ports=[V1NetworkPolicyPort(port=53, protocol="UDP"), V1NetworkPolicyPort(port=53, protocol="TCP")],
            )
        )
    ingress = (
        [V1NetworkPolicyIngressRule(ports=[V1NetworkPolicyPort(port=p, protocol=pr) for p, pr in found.ingress])]
        if found.ingress
        else []
    )
    policy = V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=V1ObjectMeta(
            name=name, namespace=namespace, labels=dict(MANAGED_BY), annotations=policy_annotations(apd, mode)
        ),
        spec=V1NetworkPolicySpec(
            pod_selector=label_selector(apd.pod_selector),
            policy_types=["Ingress", "Egress"],
            egress=egress,
            ingress=ingress,
        ),
    )
    result: dict[str, Any] = SERIALIZER.sanitize_for_serialization(policy)
    return result


def seccomp_default(mode: EnforcementMode) -> str:
    """Refuse (enforce) or log (observe, audit) what was not observed."""
    return "SCMP_ACT_ERRNO" if mode is EnforcementMode.ENFORCE else "SCMP_ACT_LOG"


def seccomp_profile(apd: ApdRevision, mode: EnforcementMode, runtime_syscalls: Sequence[str] = ()) -> dict[str, Any]:
    """OCI seccomp JSON: allow what was observed; log (audit) or refuse (enforce) the rest.

    `runtime_syscalls` is what the OCI runtime's own container init needs after the filter is
    loaded (measured from runc by `runward prove`, carried by the proof): a profile of the
    agent's behaviour alone stops the runtime before the agent starts. The candidate enforce
    profile a proof runs and the one the enforcer emits are this one function's output, so
    their hashes (`signing.profile_sha256`) agree.
    """
    syscalls = sorted({b.name for b in learnt(apd, Syscall)} | set(runtime_syscalls))
    return {
        "defaultAction": seccomp_default(mode),
        "defaultErrnoRet": 1,
        "architectures": SECCOMP_ARCHES,
        "syscalls": [{"names": syscalls, "action": "SCMP_ACT_ALLOW"}] if syscalls else [],
    }
