"""Correlator: signals -> attack stories (OCSF Detection Findings on the SOC's topic).

signals  ->  attack-stories (keyed by deployment id; a story is re-published as it grows, the newest
                            version of a batch only)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from runward.core.config import Settings, settings
from runward.core.contracts import Signal
from runward.core.stage import Context, Output, Stage
from runward.core.topics import ATTACK_STORIES, SIGNALS
from services.correlator.story import StoryBook, kafka_headers, link


def build(config: Settings) -> Stage:
    stage = Stage("correlator", inputs=[SIGNALS], outputs=[ATTACK_STORIES], config=config)
    open_stories = stage.model_table("open-story", StoryBook)
    gap = timedelta(seconds=config.story_gap_s)

    async def handle(signal: Signal, ctx: Context) -> Sequence[Output]:
        book, stories = link(open_stories.get(signal.deployment), signal, gap, config.cluster_name)
        open_stories[signal.deployment] = book
        for story in stories:
            # Directly, not with the batch: the store reopens a resolved story that grew and keeps
            # its lifecycle, which the batch upsert does not know about.
            await asyncio.to_thread(stage.store.put_story, story)
        return [
            Output(ATTACK_STORIES, story.deployment, story, latest_of=story.story_id, headers=kafka_headers(story))
            for story in stories
        ]

    stage.run(handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
