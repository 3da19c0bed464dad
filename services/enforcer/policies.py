"""Policies from observed behaviour: NetworkPolicy from egress/ingress, seccomp from syscalls.

Built with the kubernetes client models so the output is the API's own shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, TypeVar

from kubernetes.client import (
    ApiClient,
    V1IPBlock,
    V1LabelSelector,
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
    parse_behaviour,
    parse_endpoint,
)

_SERIALIZER = ApiClient()
SECCOMP_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]


EGRESS_IP = "egress_ip"
"""The profiler's refinement of each egress: the address it reached, as an `Egress.endpoint`."""

B = TypeVar("B", Egress, Ingress, Syscall, Dns)


def learnt(apd: ApdRevision, kind: type[B]) -> list[B]:
    """The APD's behaviours of one kind, typed; an entry of another kind is a corrupt APD."""
    found: list[B] = []
    for key in apd.behaviours.get(kind.CATEGORY, []):
        behaviour = parse_behaviour(key)
        if not isinstance(behaviour, kind):
            raise ValueError(
                f"APD {apd.deployment} revision {apd.revision} holds {key!r} under {kind.CATEGORY!r}; "
                "only the profiler writes APDs, report it with this revision"
            )
        found.append(behaviour)
    return found


def egress_allowlist(apd: ApdRevision) -> list[str]:
    """Every destination the agent reached during observation, by DNS name where it had one."""
    return sorted(b.endpoint for b in learnt(apd, Egress))


def network_policy(apd: ApdRevision, mode: EnforcementMode, pod_labels: dict[str, str]) -> dict[str, Any]:
    namespace, _, name = apd.deployment.partition("/")
    ip_rules: dict[tuple[int, str], set[str]] = {}
    for peer in (parse_endpoint(entry) for entry in apd.behaviours.get(EGRESS_IP, [])):
        ip = ipaddress.ip_address(peer.host)
        ip_rules.setdefault((peer.port, peer.protocol.upper()), set()).add(f"{ip}/{32 if ip.version == 4 else 128}")
    egress = [
        V1NetworkPolicyEgressRule(
            to=[V1NetworkPolicyPeer(ip_block=V1IPBlock(cidr=c)) for c in sorted(cidrs)],
            ports=[V1NetworkPolicyPort(port=port, protocol=protocol)],
        )
        for (port, protocol), cidrs in sorted(ip_rules.items())
    ]
    if learnt(apd, Dns):
        # Names resolve through cluster DNS; without this rule an egress allowlist breaks resolution.
        egress.append(
            V1NetworkPolicyEgressRule(
                to=[
                    V1NetworkPolicyPeer(
                        namespace_selector=V1LabelSelector(match_labels={"kubernetes.io/metadata.name": "kube-system"}),
                        pod_selector=V1LabelSelector(match_labels={"k8s-app": "kube-dns"}),
                    )
                ],
                ports=[V1NetworkPolicyPort(port=53, protocol="UDP"), V1NetworkPolicyPort(port=53, protocol="TCP")],
            )
        )
    ingress_ports = sorted({(b.port, b.protocol.upper()) for b in learnt(apd, Ingress)})
    ingress = (
        [V1NetworkPolicyIngressRule(ports=[V1NetworkPolicyPort(port=p, protocol=pr) for p, pr in ingress_ports])]
        if ingress_ports
        else []
    )
    policy = V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=V1ObjectMeta(
            name=f"runward-{name}",
            namespace=namespace,
            labels={"app.kubernetes.io/managed-by": "runward"},
            annotations={
                "runward.io/mode": mode.value,
                "runward.io/apd-revision": str(apd.revision),
                # FQDNs for CNIs that enforce names (Cilium toFQDNs, Calico domains); core NetworkPolicy cannot.
                "runward.io/egress-fqdns": ",".join(egress_allowlist(apd)),
            },
        ),
        spec=V1NetworkPolicySpec(
            pod_selector=V1LabelSelector(match_labels=pod_labels or {"app": name}),
            policy_types=["Ingress", "Egress"],
            egress=egress,
            ingress=ingress,
        ),
    )
    result: dict[str, Any] = _SERIALIZER.sanitize_for_serialization(policy)
    return result


def seccomp_profile(apd: ApdRevision, mode: EnforcementMode, runtime_syscalls: Sequence[str] = ()) -> dict[str, Any]:
    """OCI seccomp JSON: allow what was observed; log (audit) or refuse (enforce) the rest.

    `runtime_syscalls` is what the OCI runtime's own container init needs after the filter is
    loaded (measured from runc by `runward prove`, carried by the proof): a profile of the
    agent's behaviour alone stops the runtime before the agent starts. The candidate enforce
    profile a proof runs and the one the enforcer emits are this one function's output, so
    their hashes (`signing.profile_sha256`) agree.
    """
    syscalls = sorted({b.name for b in learnt(apd, Syscall)} | set(runtime_syscalls))
    default = {EnforcementMode.ENFORCE: "SCMP_ACT_ERRNO"}.get(mode, "SCMP_ACT_LOG")
    return {
        "defaultAction": default,
        "defaultErrnoRet": 1,
        "architectures": SECCOMP_ARCHES,
        "syscalls": [{"names": syscalls, "action": "SCMP_ACT_ALLOW"}] if syscalls else [],
    }
