"""A stage's heartbeat that cannot reach the store keeps the worker and its counts.

Faust ends the worker when a timer raises; a store briefly away (or a conflict between two
workers of a stage, as the first heartbeats once had) must not stop the stage."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runward.core.config import Settings
from runward.core.stage import Stage
from runward.core.store import Store, upgrade
from runward.core.topics import APD, SIGNALS


def test_a_failed_heartbeat_is_logged_and_its_counts_go_out_with_the_next(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runward.db'}"
    stage = Stage("heartbeat", inputs=[SIGNALS], outputs=[APD], config=Settings(db=db))
    # A real store whose tables do not exist yet: every write fails as a missing schema does.
    stage._store = Store(db, check_schema=False)
    stage._counters.processed, stage._counters.dead_letters = 7, 2

    asyncio.run(stage._heartbeat())  # raises nothing
    assert (stage._counters.processed, stage._counters.dead_letters) == (7, 2)

    upgrade(db)
    stage._counters.processed += 3
    asyncio.run(stage._heartbeat())
    [health] = Store(db).stage_health()
    assert (health["processed"], health["dead_letters"]) == (10, 2)
    assert stage._counters.processed == 0
