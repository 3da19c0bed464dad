"""Attack stories as the correlator publishes them, for tests of the gate they hold."""

from __future__ import annotations

from datetime import datetime

from runward.core.contracts import AttackStory, StoryStatus


def story_of(
    deployment: str, story_id: str, status: StoryStatus | str, seen: datetime, last_seen: datetime | None = None
) -> AttackStory:
    """A first version of a story of severity 4, first seen at `seen`, with nothing in it."""
    return AttackStory(
        story_id=story_id,
        deployment=deployment,
        version=1,
        first_seen=seen,
        last_seen=last_seen or seen,
        status=status,  # type: ignore[arg-type]  # a plain string too: the gate reads the contract's values
        severity=4,
        surfaces=[],
        techniques=[],
        narrative=[],
        signals=[],
        ocsf={},
    )
