"""Operational errors a person can act on: one line naming the address or URL and what to run.

Each case runs `runward` as a real process against a real (dead or live) address.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runward.control.broker import free_port
from tests.control.processes import REPO, cli_env, runward

SCENARIO = REPO / "scenarios" / "support_agent.jsonl"


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{stderr[-3000:]}"
    return lines[0]


def test_up_with_kafka_at_a_dead_port_is_one_line_naming_it(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = runward("up", "--no-sensor", env=cli_env(RUNWARD_HOME=str(tmp_path), RUNWARD_KAFKA=dead), timeout=60)
    assert result.returncode != 0
    line = _one_line(result.stderr)
    assert dead in line and "`runward broker`" in line and "unset RUNWARD_KAFKA" in line
    assert "Runward is up" not in result.stdout


def test_replay_to_a_dead_kafka_is_one_line_naming_it(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = runward(
        "replay", "--no-barrier", str(SCENARIO), env=cli_env(RUNWARD_HOME=str(tmp_path), RUNWARD_KAFKA=dead)
    )
    assert result.returncode != 0
    assert dead in _one_line(result.stderr)


def test_status_and_replay_on_a_fresh_home_name_the_store_and_the_command(tmp_path: Path, kafka_bootstrap: str) -> None:
    home = tmp_path / "never-started"
    url = f"sqlite:///{home.resolve()}/runward.db"
    env = cli_env(RUNWARD_HOME=str(home), RUNWARD_KAFKA=kafka_bootstrap)
    for argv in (["status"], ["replay", str(SCENARIO)]):
        result = runward(*argv, env=env)
        assert result.returncode == 1, result.stderr[-3000:]
        line = _one_line(result.stderr)
        assert url in line and "`runward db upgrade`" in line, line
        assert result.stdout == ""
    assert not home.exists()  # reading status creates nothing


def test_an_unmigrated_or_unreachable_store_names_the_command(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "runward.db").close()  # a database file without the schema
    result = runward("status", env=cli_env(RUNWARD_HOME=str(tmp_path)))
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert "runward.db" in line and "`runward db upgrade`" in line, line
    dead = f"postgresql+psycopg://runward:secret@127.0.0.1:{free_port()}/runward"
    result = runward("status", "--db", dead, env=cli_env(RUNWARD_HOME=str(tmp_path)))
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert "127.0.0.1" in line and "`runward db upgrade`" in line and "secret" not in line, line
