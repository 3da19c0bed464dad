"""Processes the control plane starts never outlive it, and `runward up` restarts what dies.

Real processes and real signals: the Tansu broker binary, the five Faust stages, the API.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runward.control.broker import free_port, port_open, start_broker
from runward.control.wait import wait_until
from tests.control.processes import REPO, Output, alive, cli_env, command_line, descendants, runward, wait_gone

STAGES = ("ingest", "bom", "profiler", "correlator", "enforcer")


def _start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], Output]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runward.control.cli", *argv],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, Output(proc)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_runward_broker_never_leaves_its_tansu_behind(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    proc, output = _start(["broker", "--port", str(port)], cli_env(RUNWARD_HOME=str(tmp_path)))
    try:
        output.wait_for("broker up on", timeout=60)
        tansu = {p for p in descendants(proc.pid) if "tansu" in command_line(p) or "broker" in command_line(p)}
        assert tansu, f"no broker process under runward broker ({descendants(proc.pid)})"
        proc.send_signal(sig)
        code = proc.wait(timeout=20)
        wait_gone(tansu, timeout=10, what=f"the broker after {sig.name} to runward broker")
        assert not port_open("127.0.0.1", port)
        if sig != signal.SIGKILL:
            assert code == 0, "".join(output.lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pid(output: Output, service: str, timeout: float = 5) -> int:
    line = output.wait_for(f"  {service:<10} up (pid ", timeout=timeout)
    match = re.search(r"pid (\d+)", line)
    assert match, line
    return int(match.group(1))


def _status(env: dict[str, str]) -> str:
    result = runward("status", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.e2e
def test_up_restarts_a_dead_stage_and_its_children_die_with_it(tmp_path: Path) -> None:
    broker_port = free_port()
    broker = start_broker(broker_port, tmp_path / "broker.log")
    env = cli_env(
        RUNWARD_HOME=str(tmp_path / "home"),
        RUNWARD_API_PORT=str(free_port()),
        RUNWARD_OTLP_PORT=str(free_port()),
        RUNWARD_API_TOKENS="t:lifetime-token-0123456789:viewer",
    )
    up, output = _start(["up", "--no-sensor", "--kafka", f"127.0.0.1:{broker_port}"], env)
    try:
        output.wait_for("Runward is up", timeout=240)
        children = descendants(up.pid)
        pids = {stage: _pid(output, stage) for stage in STAGES}
        assert set(pids.values()) <= children
        assert all(line in _status(env) for line in STAGES)

        # A stage that dies is restarted, with a line saying so, and beats again.
        killed_at = time.time()
        os.kill(pids["profiler"], signal.SIGKILL)
        output.wait_for("profiler   exited with -9; restarting in 1 s", timeout=15)
        line = output.wait_for("profiler   restarted (pid ", timeout=15)
        again = int(re.search(r"pid (\d+)", line).group(1))  # type: ignore[union-attr]
        assert again != pids["profiler"] and alive(again)

        from runward.core.store import Store

        store = Store(f"sqlite:///{(tmp_path / 'home').resolve()}/runward.db")
        wait_until(
            lambda: any(
                r["stage"] == "profiler" and r["updated_at"] and r["updated_at"].timestamp() > killed_at + 1
                for r in store.stage_health()
            ),
            timeout=90,
            failure="the restarted profiler did not beat",
        )

        # SIGKILL `runward up` with its broker gone: every child still stops on its own.
        children = descendants(up.pid)
        assert len(children) >= len(STAGES) + 2  # stages, API, OTLP receiver
        broker.kill()
        broker.wait()
        up.kill()
        up.wait()
        wait_gone(children, timeout=30, what="the processes of a SIGKILLed runward up")

        # Stages without a heartbeat show as down, not with a stale lag of 0.
        def all_down() -> str | None:
            text = _status(env)
            return text if all(re.search(rf"{stage}\s.*down", text) for stage in STAGES) else None

        wait_until(all_down, timeout=40, interval=2, failure="runward status did not mark the stopped stages down")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if broker.poll() is None:
            broker.kill()
            broker.wait()
