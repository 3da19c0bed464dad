"""Correlator: signals -> attack stories (OCSF Detection Findings on the SOC's topic).

signals  ->  attack-stories (keyed by deployment id; a story is re-published as it grows, the newest
                            version of a batch only)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from runward.core.config import Settings, settings
from runward.core.contracts import AttackStory, Signal
from runward.core.stage import Context, Output, Stage
from runward.core.topics import ATTACK_STORIES, SIGNALS
from services.correlator.story import KEPT_BYTES, StoryBook, kafka_headers, link_drafts

# A story keeps its latest signals within KEPT_BYTES and always its newest: with a newest signal
# this small, the rendered story (signals, narrative, OCSF evidences) stays far below 1 MB.
RENDER_WITH_SIGNAL_OVER = KEPT_BYTES // 4


def build(config: Settings) -> Stage:
    stage = Stage("correlator", inputs=[SIGNALS], outputs=[ATTACK_STORIES], config=config)
    open_stories = stage.model_table("open-story", StoryBook)
    gap = timedelta(seconds=config.story_gap_s)

    async def handle(signal: Signal, ctx: Context) -> Sequence[Output]:
        size = len(signal.model_dump_json())
        book, drafts = link_drafts(open_stories.get(signal.deployment), signal, gap, config.cluster_name, size)
        open_stories[signal.deployment] = book
        # A story is re-published as it grows: it is told and rendered once per batch, for the
        # version published and stored, not for every signal. Near the record limit it is told with
        # its signal, so an oversized story is refused with the signal and leaves no state behind.
        outputs = []
        for draft, finisher in drafts:
            story: AttackStory = draft
            finish: Callable[[AttackStory], AttackStory] | None = finisher
            if size > RENDER_WITH_SIGNAL_OVER:
                story, finish = finisher(draft), None
            # With the batch (one store transaction per batch, the newest version per story): the
            # store's story rule reopens a resolved story that grew and keeps the SOC's lifecycle.
            stage.put_story(story, finish)
            outputs.append(
                Output(
                    ATTACK_STORIES,
                    story.deployment,
                    story,
                    latest_of=story.story_id,
                    headers=kafka_headers(story),
                    finish=finish,
                )
            )
        return outputs

    stage.run(handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
