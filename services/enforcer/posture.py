"""ServiceAccount posture: one ServiceAccount per agent, never shared, never `default`.

A readiness check of the promotion gate, so the enforcer owns these pure rules.

A shared SA merges the audit trails of the agents using it and makes per-agent
revocation impossible; the namespace's `default` SA is shared by construction with every
workload that did not ask for one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runward.core.contracts.common import deployment_id
from runward.core.contracts.reconciliation import AgentPosture, PostureFinding, ServiceAccountRef


def service_account_of(deployment: Mapping[str, Any]) -> ServiceAccountRef:
    meta = deployment.get("metadata") or {}
    pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    # `serviceAccount` is the deprecated alias the API server still honours when the
    # current field is absent; with neither, the pod runs as the namespace's `default`.
    name = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"
    return ServiceAccountRef(namespace=str(meta.get("namespace") or "default"), name=str(name))


def deployments_from_agents(agents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Deployments in the API's shape, rebuilt from the agents the pipeline saw (the store's rows)."""
    return [
        {
            "metadata": {"namespace": a["namespace"], "name": a["name"]},
            "spec": {"template": {"spec": {"serviceAccountName": a["service_account"] or "default"}}},
        }
        for a in agents
    ]


def assess_service_accounts(deployments: Iterable[Mapping[str, Any]]) -> list[AgentPosture]:
    """Per agent Deployment, the ServiceAccount it runs as and what is wrong with that."""
    agents: list[tuple[str, ServiceAccountRef]] = []
    for dep in deployments:
        meta = dep.get("metadata") or {}
        dep_id = deployment_id(str(meta.get("namespace") or "default"), str(meta.get("name")))
        agents.append((dep_id, service_account_of(dep)))

    users: dict[ServiceAccountRef, list[str]] = {}
    for dep_id, sa in agents:
        users.setdefault(sa, []).append(dep_id)

    result: list[AgentPosture] = []
    for dep_id, sa in sorted(agents):
        findings: list[PostureFinding] = []
        others = sorted(d for d in users[sa] if d != dep_id)
        if others:
            findings.append(
                PostureFinding(
                    code="shared_service_account",
                    severity="high",
                    message=f"ServiceAccount {sa} is shared with {len(others)} other agent Deployment(s): "
                    f"{', '.join(others)}; audit trail and revocation are no longer per agent",
                    related_deployments=others,
                )
            )
        if sa.name == "default":
            findings.append(
                PostureFinding(
                    code="default_service_account",
                    severity="medium",
                    message=f"runs as the namespace's default ServiceAccount {sa}: any workload in "
                    f"{sa.namespace} without its own SA gets the same identity",
                )
            )
        result.append(AgentPosture(deployment=dep_id, service_account=sa, findings=findings))
    return result
