"""A stage's consumer fetches with the harness's short broker wait, not Faust's fixed 1,500 ms.

On the embedded broker a fetch of several partitions returns when its wait is up, so the wait
is the delay a record on an idle topic sees at every stage (ARCHITECTURE, Performance)."""

from __future__ import annotations

import asyncio

from runward.core.config import Settings
from runward.core.stage import FETCH_MAX_WAIT_MS, Stage
from runward.core.topics import APD, SIGNALS


def test_the_stage_consumer_fetches_with_the_short_wait() -> None:
    async def built() -> int:
        stage = Stage("fetch-wait", inputs=[SIGNALS], outputs=[APD], config=Settings())
        # The consumer Faust's worker starts, built the way Faust builds it (no broker needed).
        consumer = stage.app.consumer._new_consumer_thread()._create_worker_consumer(stage.app.transport)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    wait = asyncio.run(built())
    assert wait == FETCH_MAX_WAIT_MS
    assert wait <= 100, "a longer wait is paid by every record at every stage on the embedded broker"
