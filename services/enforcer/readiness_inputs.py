"""The readiness the enforcer applies to a promotion decision, from its own state and the store.

The enforcer owns the promotion gate, readiness included: a correctly signed decision is still
refused when the target mode's readiness fails now (the decision was made on stale state, or
written straight to the topic past the API's check). The checks are `readiness.assess`; this
module assembles their inputs the way the API does (`readiness.inputs_from_rows`), with the
enforcer's own view where it has one: the mode, the APD and the stories holding the gate are
the enforcer's state; the agent's ServiceAccount, the AI-BOM delta, the reconciliation report,
the waivers, the stories and the policy-bundle history (when the audit soak began) are the
stored rows `StoredEvidence` carries. Pure: the stage reads the store, this only decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from runward.core.contracts import AttackStory, EnforcementMode
from services.enforcer import promotion_gate, readiness
from services.enforcer.domain import EnforcerState
from services.enforcer.posture import assess_service_accounts, deployments_from_agents


@dataclass(frozen=True)
class StoredEvidence:
    """What the store holds about one agent, as the store gives it (read by the stage, off the loop)."""

    deployment: str
    agents: Sequence[Mapping[str, Any]] = ()  # every agent: a shared ServiceAccount is about the others too
    bundles: Sequence[Mapping[str, Any]] = ()  # every policy bundle of the agent
    bom_delta: Mapping[str, Any] | None = None
    reconciliation: Mapping[str, Any] | None = None
    stories: Sequence[Mapping[str, Any]] = ()
    waivers: Sequence[Mapping[str, Any]] = field(default_factory=list)
    audit_evidence: Sequence[Mapping[str, Any]] = ()  # would-be violations since the audit stretch began
    audit_evidence_counts: Mapping[str, int] = field(default_factory=dict)


def _posture_findings(evidence: StoredEvidence) -> list[str]:
    if not any(a.get("deployment") == evidence.deployment for a in evidence.agents):
        # Never seen by the pipeline: its ServiceAccount is unknown, which is not "its own".
        return [f"the pipeline has not seen {evidence.deployment} run: its ServiceAccount is unknown"]
    postures = assess_service_accounts(deployments_from_agents(evidence.agents))
    mine = next((p for p in postures if p.deployment == evidence.deployment), None)
    return [f.message for f in mine.findings] if mine else []


def _compromise_stories(state: EnforcerState, evidence: StoredEvidence) -> list[readiness.OpenStory]:
    """Unresolved 'potential compromise' stories: the stored ones, and any the enforcer holds
    that the store has not caught up with."""
    found: dict[str, readiness.OpenStory] = {}
    for body in evidence.stories:
        try:
            story = AttackStory.model_validate(body)
        except ValidationError:
            continue  # a row this version cannot read proves nothing either way
        if promotion_gate.holds(story):
            found[story.story_id] = readiness.OpenStory(story.story_id, story.severity, story.last_seen)
    for story_id in state.open_stories:
        if story_id not in found:
            hold = state.story_holds.get(story_id)
            found[story_id] = readiness.OpenStory(
                story_id, hold.severity if hold else None, hold.last_seen if hold else None
            )
    return list(found.values())


def assess(
    state: EnforcerState,
    evidence: StoredEvidence,
    target: EnforcementMode,
    now: datetime,
    audit_soak: timedelta,
) -> readiness.ReadinessReport:
    """The agent's readiness for `target`, judged by the enforcer."""
    agent = next(
        (a for a in evidence.agents if a.get("deployment") == state.deployment),
        {"deployment": state.deployment, "service_account": None},
    )
    holding = [state.story_holds.get(s) for s in state.open_stories]
    inputs = readiness.inputs_from_rows(
        agent=agent,
        now=now,
        mode=state.mode,
        apd=state.apd,
        bundles=evidence.bundles,
        bom_delta=evidence.bom_delta,
        reconciliation=evidence.reconciliation,
        posture_findings=_posture_findings(evidence),
        open_stories=[
            readiness.OpenStory(s, h.severity if h else None, h.last_seen if h else None)
            for s, h in zip(state.open_stories, holding, strict=True)
        ],
        compromise_stories=_compromise_stories(state, evidence),
        waivers=evidence.waivers,
        audit_soak=audit_soak,
        evidence=evidence.audit_evidence,
        evidence_counts=evidence.audit_evidence_counts,
    )
    return readiness.assess(inputs, target)
