"""Correlator: signals -> attack stories (OCSF Detection Findings on the SOC's topic).

signals  ->  attack-stories (keyed by deployment id; a story is re-published as it grows)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from runward.core.config import Settings, settings
from runward.core.contracts import Signal
from runward.core.stage import Context, Output, Stage
from runward.core.topics import ATTACK_STORIES, SIGNALS
from services.correlator.story import StoryBook, link


def build(config: Settings) -> Stage:
    stage = Stage("correlator", inputs=[SIGNALS], outputs=[ATTACK_STORIES], config=config)
    open_stories = stage.table("open-story")
    gap = timedelta(seconds=config.story_gap_s)

    async def handle(signal: Signal, ctx: Context) -> Sequence[Output]:
        raw = open_stories.get(signal.deployment)
        # A table value of the one-story-per-agent layout is a book of that one story.
        book = StoryBook.model_validate(raw if raw is None or "stories" in raw else {"stories": [raw]}) if raw else None
        book, stories = link(book, signal, gap)
        open_stories[signal.deployment] = book.model_dump(mode="json")
        for story in stories:
            await asyncio.to_thread(stage.store.put_story, story)
        return [Output(ATTACK_STORIES, story.deployment, story) for story in stories]

    stage.run(handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
