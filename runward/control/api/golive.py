"""An agent's go-live readiness, assembled from the store for the pure checks of the enforcer.

The checks themselves are `services.enforcer.readiness`; this module only loads their inputs:
latest APD, policy bundles (current mode and when the audit soak began), AI-BOM delta,
reconciliation report, ServiceAccount posture, attack stories and active waivers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jobs.reconciliation.posture import assess_service_accounts, deployments_from_agents
from runward.control.api.state import AgentState, load_state
from runward.core.contracts import EnforcementMode, utcnow
from runward.core.store import Store
from runward.core.store import history as golive
from services.enforcer import promotion_gate, readiness


def acceptances(store: Store, deployment: str) -> list[readiness.Acceptance]:
    found = []
    for w in golive.waivers(store, deployment):
        try:
            check = readiness.CheckId(w["check"])
        except ValueError:
            continue  # a check this version no longer has accepts nothing
        found.append(
            readiness.Acceptance(
                check=check,
                actor=w["actor"],
                reason=w["reason"],
                created_at=w["created_at"],
                until=w["until"],
                subject=w["subject"],
            )
        )
    return found


def _posture_findings(store: Store, deployment: str) -> list[str]:
    postures = assess_service_accounts(deployments_from_agents(store.agents()))
    mine = next((p for p in postures if p.deployment == deployment), None)
    return [f.message for f in mine.findings] if mine else []


def _open(stories: list[Any]) -> list[readiness.OpenStory]:
    return [readiness.OpenStory(story_id=s.story_id, severity=s.severity, last_seen=s.last_seen) for s in stories]


def assess(
    store: Store,
    agent: dict[str, Any],
    soak_s: int,
    target: EnforcementMode = EnforcementMode.ENFORCE,
    now: datetime | None = None,
    state: AgentState | None = None,
) -> readiness.ReadinessReport:
    state = state or load_state(store, agent)
    deployment = agent["deployment"]
    bundles = golive.artifacts(store, deployment, "policy")
    since = readiness.audit_since(bundles)
    soak_stories = (
        [s for s in state.stories if promotion_gate.holds(s) and s.last_seen >= since] if since is not None else []
    )
    inputs = readiness.ReadinessInputs(
        deployment=deployment,
        now=now or utcnow(),
        mode=promotion_gate.current_mode(state.bundle),
        apd=state.apd,
        bundle=bundles[-1] if bundles else None,
        bom_delta=store.latest_artifact(deployment, "bom_delta"),
        reconciliation=store.latest_artifact(deployment, "reconciliation"),
        service_account=agent.get("service_account"),
        posture_findings=_posture_findings(store, deployment),
        open_stories=_open(state.open_stories),
        soak_stories=_open(soak_stories),
        audit_since=since,
        audit_soak=timedelta(seconds=soak_s),
        acceptances=acceptances(store, deployment),
    )
    return readiness.assess(inputs, target)
