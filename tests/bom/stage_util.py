"""Real pipeline stages as processes on a broker of their own (consumer groups and table
changelogs of these tests never meet another suite's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from runward.control.broker import ensure_topics, free_port, start_broker
from runward.core.kafka import RecordProducer
from runward.core.store import Store, upgrade
from runward.core.topics import Topic

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def own_broker(home: Path) -> Iterator[str]:
    port = free_port()
    proc = start_broker(port, home / "broker.log")
    bootstrap = f"127.0.0.1:{port}"
    try:
        ensure_topics(bootstrap, partitions=4)
        yield bootstrap
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stage_env(bootstrap: str, db_url: str, home: Path) -> dict[str, str]:
    """A stage process's environment: this broker, this store, its data under `home`."""
    return {
        **os.environ,
        "RUNWARD_KAFKA": bootstrap,
        "RUNWARD_DB": db_url,
        "RUNWARD_HOME": str(home),
        "RUNWARD_PARTITIONS": "4",
        "PYTHONPATH": str(REPO),
    }


@contextmanager
def running_stages(names: Sequence[str], bootstrap: str, home: Path, timeout: float = 60) -> Iterator[str]:
    """Start `python -m services.<name>.app` for each name; yield the store URL once all beat."""
    db_url = f"sqlite:///{home / 'runward.db'}"
    upgrade(db_url)
    env = stage_env(bootstrap, db_url, home)
    started, procs = time.time(), []
    try:
        for name in names:
            log = (home / f"{name}.log").open("ab")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}.app"],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        store = Store(db_url)
        deadline = time.monotonic() + timeout
        waiting = set(names)
        while waiting and time.monotonic() < deadline:
            for proc, name in zip(procs, names, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"stage {name} exited {proc.returncode}; see {home / (name + '.log')}")
            waiting -= {
                row["stage"]
                for row in store.stage_health()
                if row["updated_at"] and row["updated_at"].timestamp() >= started
            }
            time.sleep(0.3)
        if waiting:
            raise RuntimeError(f"stages {sorted(waiting)} sent no heartbeat within {timeout:.0f} s; see {home}")
        for name in names:  # Faust's data directory is under RUNWARD_HOME, not the working directory
            assert (home / "faust" / f"runward-{name}").is_dir(), f"no Faust data directory for {name} in {home}"
            assert not (REPO / f"runward-{name}-data").exists(), f"{name} wrote Faust data into {REPO}"
        yield db_url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def publish(bootstrap: str, topic: Topic, items: Sequence[tuple[str, BaseModel]]) -> None:
    producer = RecordProducer(bootstrap, "test-publisher")
    failures: list[Exception] = []
    for key, record in items:
        producer.send(topic, key, record, lambda err: failures.append(err) if err else None)
    assert producer.close(15) == 0 and not failures


@contextmanager
def script_stage(script: Path, bootstrap: str, home: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run a test's own stage script (a `Stage` of its making) on the broker; yield its process.
    Its store is `home`/runward.db (migrated here), its log `home`/stage.log."""
    db_url = f"sqlite:///{home / 'runward.db'}"
    upgrade(db_url)
    env = stage_env(bootstrap, db_url, home)
    with (home / "stage.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(script), *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
