"""An agent's go-live readiness, and how the API records a go-live step.

Readiness is assembled from the store for the pure checks of the enforcer: the checks and how
their inputs are assembled are `services.enforcer.readiness`; this module only reads the store:
latest APD, every policy bundle (current mode and when the audit soak began), AI-BOM delta,
reconciliation report, ServiceAccount posture, stories and waivers.

A go-live step the API records (a promotion decision, an accepted APD revision, a policy proof)
is recorded one way, by `record_step`: signed with the promotion key, published for the
enforcer and appended to the go-live history, in that order, so that the history names only
what the enforcer will see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from fastapi import HTTPException, status

from runward.control.api.publisher import Publisher, PublishError
from runward.control.api.state import AgentState, load_state
from runward.core import signing
from runward.core.config import Settings
from runward.core.contracts import AttackStory, EnforcementMode, PromotionDecision, utcnow
from runward.core.store import Store, history
from runward.core.topics import Topic
from services.enforcer import promotion_gate, readiness
from services.enforcer.posture import assess_service_accounts, deployments_from_agents

log = logging.getLogger(__name__)


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


def record_step(
    record: signing.Signed,
    topic: Topic[Any],
    *,
    config: Settings,
    publisher: Publisher,
    store: Store,
    kind: history.HistoryKind,
    actor: str,
    reason: str,
    body: dict[str, Any],
    ts: datetime | None = None,
    keep: Callable[[signing.Signed], None] | None = None,
) -> signing.Signed:
    """Sign `record` with the promotion key, publish it to `topic` (keyed by its deployment) and
    append the history entry; `keep` stores the signed record first, where the caller keeps one.

    Fails closed with 503 when no key is configured (the enforcer refuses what is not signed, so
    accepting it here would lie) or when Kafka does not acknowledge it (a 202 must mean the
    enforcer will see it); nothing is stored then.
    """
    what = "decision" if isinstance(record, PromotionDecision) else "proof"
    key = signing.promotion_key(config)
    if key is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="no promotion key is configured (RUNWARD_PROMOTION_KEY or promotion.key under RUNWARD_HOME, "
            f"written by `runward up`); the enforcer accepts only signed {what}s",
        )
    signed = signing.sign(record, key)
    try:
        publisher.publish(topic, signed.deployment, signed)
    except PublishError as exc:
        log.error("%s of %s not published to %s: %s", what, signed.deployment, topic.name, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the {what} was not recorded: {exc}") from None
    if keep is not None:
        keep(signed)
    history.append(store, signed.deployment, kind, actor, reason, body, ts=ts)
    return signed
