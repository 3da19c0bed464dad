"""The same destinations (`policies.destinations`) as the CNIs that enforce names write them.

- Cilium `cilium.io/v2` CiliumNetworkPolicy: external names as `toFQDNs` (with the DNS rule's
  `rules.dns` so the agent's lookups go through Cilium's DNS proxy, which `toFQDNs` needs),
  in-cluster destinations as `toEndpoints` on the namespace label, addresses as `toCIDR`.
  Cilium has no per-policy audit switch: policy audit mode is agent configuration
  (`policy-audit-mode` in cilium-config, or per endpoint with
  `cilium-dbg endpoint config <id> PolicyAuditMode=Enabled`). In audit the policy is emitted with
  `enableDefaultDeny: {egress: false, ingress: false}`: it never puts the pods into default deny, so
  nothing is dropped, and Hubble's policy verdicts show which flows the rules match.
- Calico `projectcalico.org/v3`: NetworkPolicy in enforce, StagedNetworkPolicy (`stagedAction:
  Set`) in audit, which Calico evaluates and reports on without enforcing. `destination.domains`
  is a Calico Enterprise / Calico Cloud field (validated against their CRD): open-source Calico
  drops it, so there it allows only the in-cluster and address rules.

CRD documents are plain dicts (no client models exist for them); the tests validate them against
the vendored CRD schemas. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from runward.core.contracts import ApdRevision, EnforcementMode
from services.enforcer.policies import (
    KUBE_DNS_LABELS,
    KUBE_DNS_NAMESPACE,
    MANAGED_BY,
    NAMESPACE_LABEL,
    Destinations,
    Port,
    destinations,
    policy_annotations,
    policy_name,
)

CILIUM_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
CILIUM_AUDIT_NOTE = (
    "audit: enableDefaultDeny is off, so this policy drops nothing; for would-be-drop verdicts enable "
    "Cilium policy audit mode (cilium-config policy-audit-mode, or cilium-dbg endpoint config <id> "
    "PolicyAuditMode=Enabled)"
)


def _metadata(apd: ApdRevision, mode: EnforcementMode, extra: dict[str, str] | None = None) -> dict[str, Any]:
    namespace, name = policy_name(apd)
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(MANAGED_BY),
        "annotations": {**policy_annotations(apd, mode), **(extra or {})},
    }


def _cilium_ports(port: Port) -> list[dict[str, Any]]:
    return [{"ports": [{"port": str(port[0]), "protocol": port[1]}]}]


def _cilium_egress(found: Destinations) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if found.dns:
        dns_peer = {
            "matchLabels": {
                CILIUM_NAMESPACE_LABEL: KUBE_DNS_NAMESPACE,
                **{f"k8s:{k}": v for k, v in KUBE_DNS_LABELS.items()},
            }
        }
        rules.append(
            {
                "toEndpoints": [dns_peer],
                "toPorts": [
                    {
                        "ports": [{"port": "53", "protocol": "ANY"}],
                        "rules": {"dns": [{"matchPattern": "*"}]},
                    }
                ],
            }
        )
    for port, names in sorted(found.fqdns.items()):
        rules.append({"toFQDNs": [{"matchName": n} for n in sorted(names)], "toPorts": _cilium_ports(port)})
    for port, namespaces in sorted(found.namespaces.items()):
        peers = [{"matchLabels": {CILIUM_NAMESPACE_LABEL: ns}} for ns in sorted(namespaces)]
        rules.append({"toEndpoints": peers, "toPorts": _cilium_ports(port)})
    for port, cidrs in sorted(found.cidrs.items()):
        rules.append({"toCIDR": sorted(cidrs), "toPorts": _cilium_ports(port)})
    return rules


def cilium_network_policy(
    apd: ApdRevision, mode: EnforcementMode, found: Destinations | None = None
) -> dict[str, Any] | None:
    """CiliumNetworkPolicy in audit (drops nothing) and enforce; None in observe or without a selector.
    `found`: the APD's `destinations`, if known."""
    if mode is EnforcementMode.OBSERVE or not apd.pod_selector:
        return None
    found = destinations(apd) if found is None else found
    spec: dict[str, Any] = {
        "description": f"runward {mode.value} policy of {apd.deployment}, APD revision {apd.revision}",
        "endpointSelector": {k: v for k, v in apd.pod_selector.items() if k in {"matchLabels", "matchExpressions"}},
        "egress": _cilium_egress(found),
    }
    if found.ingress:
        spec["ingress"] = [
            {"fromEntities": ["all"], "toPorts": [p for port in found.ingress for p in _cilium_ports(port)]}
        ]
    enforcing = mode is EnforcementMode.ENFORCE
    spec["enableDefaultDeny"] = {"egress": enforcing, "ingress": enforcing}
    extra = {} if enforcing else {"runward.io/audit": CILIUM_AUDIT_NOTE}
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": _metadata(apd, mode, extra),
        "spec": spec,
    }


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "") + "'"


def calico_selector(selector: dict[str, Any]) -> str:
    """A Kubernetes label selector in Calico's selector syntax."""
    terms = [f"{k} == {_quoted(v)}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        key, values = e["key"], ", ".join(_quoted(v) for v in e.get("values") or [])
        terms.append(
            {
                "In": f"{key} in {{{values}}}",
                "NotIn": f"{key} not in {{{values}}}",
                "Exists": f"has({key})",
                "DoesNotExist": f"!has({key})",
            }[e["operator"]]
        )
    return " && ".join(terms) or "all()"


def _calico_egress(found: Destinations) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if found.dns:
        dns = {
            "selector": calico_selector({"matchLabels": KUBE_DNS_LABELS}),
            "namespaceSelector": f"{NAMESPACE_LABEL} == {_quoted(KUBE_DNS_NAMESPACE)}",
            "ports": [53],
        }
        rules += [{"action": "Allow", "protocol": p, "destination": dict(dns)} for p in ("UDP", "TCP")]
    for (port, protocol), names in sorted(found.fqdns.items()):
        rules.append(
            {"action": "Allow", "protocol": protocol, "destination": {"domains": sorted(names), "ports": [port]}}
        )
    for (port, protocol), namespaces in sorted(found.namespaces.items()):
        for ns in sorted(namespaces):
            rules.append(
                {
                    "action": "Allow",
                    "protocol": protocol,
                    "destination": {"namespaceSelector": f"{NAMESPACE_LABEL} == {_quoted(ns)}", "ports": [port]},
                }
            )
    for (port, protocol), cidrs in sorted(found.cidrs.items()):
        rules.append({"action": "Allow", "protocol": protocol, "destination": {"nets": sorted(cidrs), "ports": [port]}})
    return rules


def calico_policy(apd: ApdRevision, mode: EnforcementMode, found: Destinations | None = None) -> dict[str, Any] | None:
    """Calico NetworkPolicy (enforce) or StagedNetworkPolicy (audit); None in observe or without a
    selector. `found`: the APD's `destinations`, if known."""
    if mode is EnforcementMode.OBSERVE or not apd.pod_selector:
        return None
    found = destinations(apd) if found is None else found
    spec: dict[str, Any] = {
        "selector": calico_selector(apd.pod_selector),
        "types": ["Ingress", "Egress"],
        "egress": _calico_egress(found),
        "ingress": [
            {"action": "Allow", "protocol": protocol, "destination": {"ports": [port]}}
            for port, protocol in found.ingress
        ],
    }
    kind = "NetworkPolicy"
    if mode is EnforcementMode.AUDIT:
        kind, spec = "StagedNetworkPolicy", {"stagedAction": "Set", **spec}
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": _metadata(apd, mode), "spec": spec}
