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


def test_records_in_and_lag_are_counted_once_per_batch(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from faust.types import TP

    from runward.core.config import Settings
    from runward.core.metrics import STAGE_RECORDS_IN
    from runward.core.stage import Stage
    from runward.core.topics import ENRICHED, RAW_SENSOR

    stage = Stage("count-test", inputs=[RAW_SENSOR, ENRICHED], outputs=[], config=Settings(home=tmp_path))
    tracked: list[tuple[str, int, int]] = []
    stage._track_lag = lambda message: tracked.append((message.topic, message.partition, message.offset))  # type: ignore[method-assign]

    def event(topic: str, partition: int, offset: int) -> Any:
        tp = TP(topic, partition)
        return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition, offset=offset, tp=tp))

    def counted(topic: str) -> float:
        return STAGE_RECORDS_IN.labels("count-test", topic)._value.get()

    batch = [event(RAW_SENSOR.name, 0, 5), event(RAW_SENSOR.name, 1, 7), event(RAW_SENSOR.name, 0, 6)]
    batch.append(event(ENRICHED.name, 0, 3))
    raw, enriched = counted(RAW_SENSOR.name), counted(ENRICHED.name)
    stage._count_in(batch)
    assert counted(RAW_SENSOR.name) - raw == 3 and counted(ENRICHED.name) - enriched == 1
    # The lag after each partition's last record of the batch, not after every record.
    assert sorted(tracked) == sorted([(RAW_SENSOR.name, 0, 6), (RAW_SENSOR.name, 1, 7), (ENRICHED.name, 0, 3)])


def test_the_monitor_keeps_per_record_only_what_faust_reads(tmp_path: Path) -> None:
    from faust.types import TP

    from runward.core.stage import _Monitor

    app = _App(
        "runward-test-monitor", broker="kafka://127.0.0.1:1", web_enabled=False, datadir=str(tmp_path), Monitor=_Monitor
    )
    monitor = app.monitor
    assert isinstance(monitor, _Monitor)
    tp = TP("runward.raw.sensor", 0)
    assert monitor.on_stream_event_in(tp, 5, object(), object()) is None  # nothing for event_out
    assert tp in monitor.stream_inbound_time  # Faust's stalled-stream warning reads it
    assert monitor.events_total == 0 and not monitor.events_by_stream
