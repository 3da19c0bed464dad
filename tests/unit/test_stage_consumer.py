"""The stage's Kafka consumer hands a record to the streams without Faust's four tasks per
record, and still lets a suspension (a rebalance) abandon a delivery that blocks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from runward.core.stage import _App, _Consumer


def _consumer(tmp_path: Path) -> Any:
    app = _App("runward-test-consumer", broker="kafka://127.0.0.1:1", web_enabled=False, datadir=str(tmp_path))
    consumer = app.consumer
    assert isinstance(consumer, _Consumer)
    return consumer


def test_a_delivery_that_does_not_block_runs_at_once_without_tasks(tmp_path: Path) -> None:
    async def scenario() -> None:
        consumer = _consumer(tmp_path)
        created: list[Any] = []
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda lp, coro, **kw: created.append(coro) or asyncio.Task(coro, loop=lp, **kw))
        delivered: list[int] = []

        async def deliver() -> int:
            delivered.append(1)
            return 5

        result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        assert result.results == [5] and not result.stopped
        assert delivered == [1]
        assert created == []

    asyncio.run(scenario())


def test_a_blocked_delivery_is_abandoned_when_the_flow_is_suspended(tmp_path: Path) -> None:
    async def scenario() -> None:
        consumer = _consumer(tmp_path)
        buffer: asyncio.Queue[int] = asyncio.Queue(1)
        buffer.put_nowait(1)

        async def deliver() -> int:
            await buffer.put(2)
            return 7

        waiting = asyncio.ensure_future(consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # blocked on the full buffer
        consumer.suspend_flow.set()
        result = await waiting
        assert result.results == [True]  # the suspension won
        await asyncio.sleep(0)
        assert buffer.qsize() == 1 and buffer.get_nowait() == 1  # the abandoned record was not added

        consumer.suspend_flow.clear()
        buffer.put_nowait(1)
        waiting = asyncio.ensure_future(consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
        await asyncio.sleep(0.05)
        assert buffer.get_nowait() == 1  # room again: the blocked delivery finishes
        assert (await waiting).results == [7]
        assert buffer.get_nowait() == 2

    asyncio.run(scenario())


def test_while_suspended_deliveries_go_faust_s_way(tmp_path: Path) -> None:
    async def scenario() -> None:
        consumer = _consumer(tmp_path)
        consumer.suspend_flow.set()
        started: list[int] = []

        async def deliver() -> int:
            started.append(1)
            await asyncio.sleep(0.5)
            return 5

        result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        assert result.results == [True]  # not delivered: the suspension is already there

    asyncio.run(scenario())
