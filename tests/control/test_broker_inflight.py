"""What a broker restart loses in flight is counted and reported: a real Tansu broker (memory
storage) holds records that the ingest group has partly read; it dies and an empty one takes its
place; the count of records the stage had not committed lands in the store and `runward status`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

from runward.control.broker import ensure_topics, free_port, start_broker
from runward.control.cli import app
from runward.control.inflight import InFlightWatch
from runward.core.config import Settings
from runward.core.store import Store, upgrade
from runward.core.topics import RAW_SENSOR


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0  # every tick is due
        return self.now


def test_records_a_broker_restart_loses_are_counted_per_stage(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    config = Settings(kafka=bootstrap, home=tmp_path / "home", partitions=2)
    db_url = f"sqlite:///{tmp_path}/runward.db"
    upgrade(db_url)
    store = Store(db_url)
    said: list[str] = []
    watch = InFlightWatch(config, store.record_lost_in_flight, said.append, Clock())
    broker = start_broker(port, tmp_path / "broker-1.log")
    try:
        ensure_topics(bootstrap, 2)
        producer = Producer({"bootstrap.servers": bootstrap})
        for n in range(30):
            producer.produce(RAW_SENSOR.name, json.dumps({"n": n}).encode(), partition=n % 2)
        assert producer.flush(15) == 0
        # The ingest stage's group read and committed 10 records of partition 0 (of 15 there).
        ingest = Consumer({"bootstrap.servers": bootstrap, "group.id": "runward-ingest", "enable.auto.commit": False})
        ingest.commit(offsets=[TopicPartition(RAW_SENSOR.name, 0, 10)], asynchronous=False)
        ingest.close()
        watch.tick()
        assert watch.last is not None and watch.last.in_flight()["ingest"] == 20
        watch.tick()  # the same broker: nothing lost
        assert said == [] and watch.lost_total == 0
    finally:
        broker.kill()
        broker.wait(10)
    watch.tick()  # the broker is away: the last snapshot is kept
    broker = start_broker(port, tmp_path / "broker-2.log")
    try:
        ensure_topics(bootstrap, 2)
        deadline = time.monotonic() + 30
        while not said and time.monotonic() < deadline:
            watch.tick()  # an empty broker: end offsets went back to 0
            time.sleep(0.2)
    finally:
        broker.kill()
        broker.wait(10)
        watch.close()
    assert watch.lost_total == 20
    assert len(said) == 1 and "about 20 records in flight were lost (ingest 20)" in said[0]
    health = {row["stage"]: row for row in store.stage_health()}
    assert health["ingest"]["lost_in_flight"] == 20 and health["profiler"]["lost_in_flight"] == 0
    shown = CliRunner().invoke(app, ["status", "--db", db_url, "--kafka", bootstrap])
    assert shown.exit_code == 0, shown.output
    assert "about 20 records were lost in flight" in shown.output
