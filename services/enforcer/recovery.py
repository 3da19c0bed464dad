"""An enforcer state rebuilt from the store when its changelog is gone (a restarted in-memory
broker): without it an enforced agent would fall back to observe and its next bundle would be
numbered 1 again. The latest stored bundle gives the mode, revision and open stories, and names
the APD revision it was derived from (a later stored one is still on its way to the enforcer);
an enforce-mode bundle, or one a rollout put in audit, was frozen on that revision."""

from __future__ import annotations

from typing import Any

from runward.core.contracts import ApdRevision, EnforcementMode, PolicyBundle
from services.enforcer.domain import EnforcerState, StoryHold


def restore(deployment: str, bundle: dict[str, Any] | None, apd: dict[str, Any] | None) -> EnforcerState | None:
    """The state that emitted `bundle`, with `apd` the revision it names; None for a new agent."""
    if bundle is None:
        return None
    stored = PolicyBundle.model_validate(bundle)
    built = ApdRevision.model_validate(apd) if apd is not None else None
    frozen = stored.mode is EnforcementMode.ENFORCE or stored.mode_reason is not None
    return EnforcerState(
        deployment=deployment,
        revision=stored.revision,
        mode=stored.mode,
        mode_reason=stored.mode_reason,
        apd=built,
        frozen=built if frozen else None,
        open_stories=list(stored.open_stories),
        story_holds={s: StoryHold(story_id=s) for s in stored.open_stories},
        proof=stored.proof,  # every bundle carries the latest proof (checked when it was consumed)
        frozen_proof=stored.proof if frozen else None,
    )
