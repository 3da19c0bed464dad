"""Policies from observed behaviour: NetworkPolicy from egress/ingress, seccomp from syscalls.

Built with the kubernetes client models so the output is the API's own shape.
"""

from __future__ import annotations

import ipaddress
from typing import Any

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

from runward.core.contracts import ApdRevision, EnforcementMode

_SERIALIZER = ApiClient()
SECCOMP_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]


def egress_allowlist(apd: ApdRevision) -> list[str]:
    """Every destination the agent reached during observation, by DNS name where it had one."""
    return sorted(b.removeprefix("egress:") for b in apd.behaviours.get("egress", []))


def _parse_peer(entry: str) -> tuple[str, int, str]:
    host_port, _, protocol = entry.rpartition("/")
    host, _, port = host_port.rpartition(":")
    return host, int(port), protocol.upper()


def network_policy(apd: ApdRevision, mode: EnforcementMode, pod_labels: dict[str, str]) -> dict[str, Any]:
    namespace, _, name = apd.deployment.partition("/")
    ip_rules: dict[tuple[int, str], set[str]] = {}
    for entry in apd.behaviours.get("egress_ip", []):
        address, port, protocol = _parse_peer(entry)
        ip = ipaddress.ip_address(address)
        ip_rules.setdefault((port, protocol), set()).add(f"{ip}/{32 if ip.version == 4 else 128}")
    egress = [
        V1NetworkPolicyEgressRule(
            to=[V1NetworkPolicyPeer(ip_block=V1IPBlock(cidr=c)) for c in sorted(cidrs)],
            ports=[V1NetworkPolicyPort(port=port, protocol=protocol)],
        )
        for (port, protocol), cidrs in sorted(ip_rules.items())
    ]
    if apd.behaviours.get("dns"):
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
    ingress_ports = sorted({_parse_ingress(b) for b in apd.behaviours.get("ingress", [])})
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


def _parse_ingress(entry: str) -> tuple[int, str]:
    port, _, protocol = entry.removeprefix("ingress:").partition("/")
    return int(port), protocol.upper()


def seccomp_profile(apd: ApdRevision, mode: EnforcementMode) -> dict[str, Any]:
    """OCI seccomp JSON: allow what was observed; log (audit) or refuse (enforce) the rest."""
    syscalls = sorted(b.removeprefix("syscall:") for b in apd.behaviours.get("syscalls", []))
    default = {EnforcementMode.ENFORCE: "SCMP_ACT_ERRNO"}.get(mode, "SCMP_ACT_LOG")
    return {
        "defaultAction": default,
        "defaultErrnoRet": 1,
        "architectures": SECCOMP_ARCHES,
        "syscalls": [{"names": syscalls, "action": "SCMP_ACT_ALLOW"}] if syscalls else [],
    }
