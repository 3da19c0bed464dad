"""An agent's current state as the gate and the agent views see it, read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runward.control.api.schemas import AgentSummary, ApdSummary
from runward.core.contracts import ApdRevision, AttackStory, PolicyBundle
from runward.core.store import Store
from services.enforcer import promotion_gate

# Enough to cover every story that can still hold the gate; older ones are history.
STORY_SCAN_LIMIT = 1000


@dataclass(frozen=True)
class AgentState:
    agent: dict[str, Any]
    apd: ApdRevision | None
    bundle: PolicyBundle | None
    stories: list[AttackStory]

    @property
    def open_stories(self) -> list[AttackStory]:
        return promotion_gate.open_stories(self.stories, self.bundle)

    def summary(self) -> AgentSummary:
        apd = None
        if self.apd is not None:
            apd = ApdSummary(
                revision=self.apd.revision,
                window_status=self.apd.window_status,
                window_ends_at=self.apd.window_ends_at,
                autonomy=self.apd.autonomy,
            )
        return AgentSummary(
            **self.agent,
            apd=apd,
            mode=promotion_gate.current_mode(self.bundle),
            policy_revision=self.bundle.revision if self.bundle else None,
            open_attack_stories=len(self.open_stories),
        )


def load_state(store: Store, agent: dict[str, Any]) -> AgentState:
    deployment = agent["deployment"]
    apd = store.latest_artifact(deployment, "apd")
    bundle = store.latest_artifact(deployment, "policy")
    return AgentState(
        agent=agent,
        apd=ApdRevision.model_validate(apd) if apd else None,
        bundle=PolicyBundle.model_validate(bundle) if bundle else None,
        stories=[AttackStory.model_validate(s) for s in store.stories(deployment, limit=STORY_SCAN_LIMIT)],
    )
