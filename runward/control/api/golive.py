"""An agent's go-live readiness, assembled from the store for the pure checks of the enforcer.

The checks and how their inputs are assembled are `services.enforcer.readiness`; this module
only reads the store: latest APD, every policy bundle (current mode and when the audit soak
began), AI-BOM delta, reconciliation report, ServiceAccount posture, stories and waivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from runward.control.api.state import AgentState, load_state
from runward.core.contracts import AttackStory, EnforcementMode, utcnow
from runward.core.store import Store, history
from services.enforcer import promotion_gate, readiness
from services.enforcer.posture import assess_service_accounts, deployments_from_agents


def _posture_findings(store: Store, deployment: str) -> list[str]:
    postures = assess_service_accounts(deployments_from_agents(store.agents()))
    mine = next((p for p in postures if p.deployment == deployment), None)
    return [f.message for f in mine.findings] if mine else []


def _open(stories: Sequence[AttackStory]) -> list[readiness.OpenStory]:
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
    bundles = history.artifacts(store, deployment, "policy")
    since = readiness.audit_since(bundles)
    evidence, counts = store.audit_evidence(deployment, since=since, limit=20) if since else ([], {})
    inputs = readiness.inputs_from_rows(
        agent=agent,
        now=now or utcnow(),
        mode=promotion_gate.current_mode(state.bundle),
        apd=state.apd,
        bundles=bundles,
        bom_delta=store.latest_artifact(deployment, "bom_delta"),
        reconciliation=store.latest_artifact(deployment, "reconciliation"),
        posture_findings=_posture_findings(store, deployment),
        open_stories=_open(state.open_stories),
        compromise_stories=_open([s for s in state.stories if promotion_gate.holds(s)]),
        waivers=history.waivers(store, deployment),
        audit_soak=timedelta(seconds=soak_s),
        evidence=evidence,
        evidence_counts=counts,
    )
    return readiness.assess(inputs, target)
