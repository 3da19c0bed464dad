"""The supervisor's restart policy on real processes: backoff that grows, a line each time,
and a dead embedded broker stops everything instead of being restarted empty."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runward.control.broker import BrokerError
from runward.control.supervisor import RESTART_BACKOFF_S, Service, Supervisor
from runward.control.wait import wait_until
from runward.core.config import Settings


def _supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(Settings(home=tmp_path, kafka="127.0.0.1:1"), external_kafka=True)


def test_a_crashing_service_is_restarted_with_growing_backoff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = _supervisor(tmp_path)
    crashing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    sup.spawn("crasher", crashing)
    pids = [sup.services[0].proc.pid]
    try:
        for attempt, delay in enumerate(RESTART_BACKOFF_S[:2], 1):

            def restarted(attempt: int = attempt) -> bool:
                sup.tend()
                return sup.services[0].failures == attempt

            wait_until(restarted, timeout=delay + 10, interval=0.1, failure=f"restart {attempt}")
            pids.append(sup.services[0].proc.pid)
            out = capsys.readouterr().out
            assert f"crasher    exited with 3; restarting in {delay:.0f} s (restart {attempt};" in out
            assert f"crasher    restarted (pid {pids[-1]})" in out
        assert len(set(pids)) == 3 and [s.name for s in sup.services] == ["crasher"]
    finally:
        sup.stop()


def test_a_dead_embedded_broker_is_not_restarted(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    sup.services.append(Service("broker", proc, tmp_path / "broker.log"))
    with pytest.raises(BrokerError, match="memory storage"):
        sup.tend()
