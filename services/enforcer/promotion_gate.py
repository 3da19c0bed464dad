"""The manual promotion gate of progressive enforcement (Observe -> Audit -> Enforce).

The enforcer owns it: it applies the gate to every promotion decision it consumes, whoever
wrote it. The API asks the same functions first, to answer a refused promotion with 409.
Pure functions, no I/O, so the rules can be read, tested and explained on their own:

1. Stepping back to a lower mode is always allowed: it only loosens enforcement.
2. Promoting to audit or enforce needs the latest APD to have a complete observation
   window: policies written before the baseline is complete break the agent.
3. ... and no open attack story: a 'potential compromise' story seen after the latest
   policy bundle was produced, or one the enforcer listed in that bundle as holding the
   gate. Stories tagged 'expected drift, deployment correlated' never hold the gate.
4. Enforce additionally needs the agent to be in audit now: no skipping the audit step.
5. Going up also needs the go-live readiness checks of the target mode (`readiness.NEEDED`:
   AI-BOM reviewed, ServiceAccount, reconciliation, policies proven, audit soak...) to pass or
   be waived. `decide` is the whole gate: the API asks it for its 409, the enforcer applies it
   to every decision it consumes, each on the readiness report it assembled from the same rows.
6. Enforce (and accepting a newer APD revision into enforce) needs a passing policy proof
   (`runward prove`) of that APD revision, whose profile hash is the enforce profile the
   enforcer would emit for it: the profile and allowlist ran the agent's recorded workload
   under runc without breaking it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyBundle,
    PolicyProof,
    StoryLifecycle,
    StoryStatus,
    WindowStatus,
)
from runward.core.signing import profile_sha256
from services.enforcer import readiness
from services.enforcer.policies import seccomp_profile

_ORDER = {EnforcementMode.OBSERVE: 0, EnforcementMode.AUDIT: 1, EnforcementMode.ENFORCE: 2}


class HoldingStory(Protocol):
    """What the gate needs of a story that holds it (an AttackStory, or the enforcer's note of one)."""

    @property
    def story_id(self) -> str: ...
    @property
    def severity(self) -> int | None: ...
    @property
    def last_seen(self) -> datetime | None: ...


@dataclass(frozen=True)
class GateResult:
    target: EnforcementMode
    current: EnforcementMode
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.reasons


def current_mode(bundle: PolicyBundle | None) -> EnforcementMode:
    """Agents start in observe; after that the latest policy bundle carries the mode."""
    return bundle.mode if bundle is not None else EnforcementMode.OBSERVE


def open_stories(stories: Sequence[AttackStory], bundle: PolicyBundle | None) -> list[AttackStory]:
    """The 'potential compromise' stories of one agent that hold its promotion gate, as the store
    (the API's view) has them: the enforcer tracks the same set from the stories it consumes."""
    held = set(bundle.open_stories) if bundle is not None else set()
    return [
        s for s in stories if holds(s) and (bundle is None or s.last_seen > bundle.created_at or s.story_id in held)
    ]


def holds(story: AttackStory) -> bool:
    """Whether a story, in its latest version, holds its agent's gate (rule 3): unresolved only."""
    return (
        story.status is StoryStatus.POTENTIAL_COMPROMISE
        and story.lifecycle is not StoryLifecycle.RESOLVED
        and not story.merged_into
    )


def evaluate(
    target: EnforcementMode,
    current: EnforcementMode,
    apd: ApdRevision | None,
    holding: Sequence[HoldingStory],
    proof: PolicyProof | None = None,
) -> GateResult:
    """Every reason the agent may not go from `current` to `target`; none means allowed.

    `holding` are the open 'potential compromise' stories of the agent (see open_stories);
    `proof` is the agent's latest policy proof (its signature already checked by the caller).
    """
    reasons: list[str] = []
    if target == current:
        reasons.append(f"the agent is already in {current.value} mode")
    elif _ORDER[target] > _ORDER[current]:
        if apd is None:
            reasons.append("no APD baseline exists yet: the profiler has not observed this agent")
        elif apd.window_status != WindowStatus.COMPLETE:
            reasons.append(
                f"the observation window of APD revision {apd.revision} is {apd.window_status.value}, "
                f"not complete (it ends at {apd.window_ends_at.isoformat()})"
            )
        reasons.extend(_held_by(story) for story in holding)
        if target == EnforcementMode.ENFORCE and current != EnforcementMode.AUDIT:
            reasons.append(f"enforce needs the agent to be in audit mode first; it is in {current.value}")
        if target == EnforcementMode.ENFORCE and apd is not None and not proven(apd, proof):  # rule 6
            reasons.append(
                f"no passing proof for APD revision {apd.revision}: run `runward prove {apd.deployment}`"
                + _proof_detail(apd, proof)
            )
    return GateResult(target=target, current=current, reasons=tuple(reasons))


def enforce_profile(apd: ApdRevision, proof: PolicyProof) -> dict[str, Any]:
    """The enforce-mode seccomp profile a proof of `apd` stands for (the runtime's needs it measured included)."""
    return seccomp_profile(apd, EnforcementMode.ENFORCE, proof.runtime_syscalls)


def proven(apd: ApdRevision, proof: PolicyProof | None) -> bool:
    """Whether `proof` passed for exactly the enforce profile the enforcer would emit for `apd`."""
    return (
        proof is not None
        and proof.passed
        and proof.deployment == apd.deployment
        and proof.apd_revision == apd.revision
        and proof.profile_sha256 == profile_sha256(enforce_profile(apd, proof))
    )


def _proof_detail(apd: ApdRevision, proof: PolicyProof | None) -> str:
    if proof is None:
        return ""
    if proof.apd_revision != apd.revision:
        return f" (the latest proof is of APD revision {proof.apd_revision})"
    if not proof.passed:
        return f" (the latest proof failed: {proof.summary})"
    return " (the latest proof ran another seccomp profile than the one this APD revision gives)"


def _held_by(story: HoldingStory) -> str:
    seen = [f"severity {story.severity}"] if story.severity is not None else []
    if story.last_seen is not None:
        seen.append(f"last seen {story.last_seen.isoformat()}")
    detail = f" ({', '.join(seen)})" if seen else ""
    return f"attack story {story.story_id}{detail} is an open potential compromise"


def decide(
    target: EnforcementMode,
    current: EnforcementMode,
    apd: ApdRevision | None,
    holding: Sequence[HoldingStory],
    report: readiness.ReadinessReport | None,
    proof: PolicyProof | None = None,
) -> GateResult:
    """The whole gate (rules 1-6): `evaluate`, then the readiness checks `target` needs.

    `report` is the agent's readiness for `target`; None when it could not be assessed, and
    then going up is refused (nothing fails open). `proof` is the agent's latest policy proof."""
    result = evaluate(target, current, apd, holding, proof)
    extra = readiness.gate_reasons(report, target, current) if target != current else []
    return GateResult(target=target, current=current, reasons=(*result.reasons, *extra))
