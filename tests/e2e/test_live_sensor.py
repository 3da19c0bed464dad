"""The whole pipeline fed by the real eBPF sensor: workloads started with `runward run`.

Two replicas and a restart of the same Deployment fold into one APD that does not change
when the same behaviour repeats; a new behaviour after the window becomes an attack story.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runward.control.broker import free_port
from runward.control.supervisor import Supervisor
from runward.core.config import Settings
from runward.core.contracts import StoryStatus
from runward.core.store import Store

pytestmark = [pytest.mark.e2e, pytest.mark.kernel]
TOKEN = "viewer-token-live-sensor-0123456789"
WINDOW_S = 45


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    from sensor.cli import sensor_unavailable_reason

    reason = sensor_unavailable_reason()
    if reason:
        pytest.skip(f"the eBPF sensor cannot run here: {reason}")
    home = tmp_path_factory.mktemp("live")
    config = Settings(
        kafka=f"127.0.0.1:{free_port()}",
        home=home,
        api_port=free_port(),
        otlp_port=free_port(),
        api_tokens=f"soc:{TOKEN}:viewer",
        observation_window_s=WINDOW_S,
    )
    sup = Supervisor(config, external_kafka=False)
    sup.start(with_sensor=True)
    if not any(s.name == "sensor" for s in sup.services):
        sup.stop()
        pytest.fail("runward up did not start the sensor although preflight said it can run")
    try:
        yield sup
    finally:
        sup.stop()


class Listener:
    """A local TCP service the agent reaches, standing in for its model provider."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()


AGENT = """
import socket, subprocess, sys, time
subprocess.run(["/bin/true"])
for _ in range(3):
    socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()
    time.sleep(0.2)
if len(sys.argv) > 2:
    subprocess.run([sys.argv[2]])
time.sleep(1.5)
"""


def run_agent(
    sup: Supervisor, monkeypatch: pytest.MonkeyPatch, port: int, replicas: int, extra: str | None = None
) -> None:
    from sensor.workloads import run_workload

    monkeypatch.setenv("RUNWARD_HOME", str(sup.config.home.resolve()))
    cmd = [sys.executable, "-c", AGENT, str(port)] + ([extra] if extra else [])
    with run_workload("agents/live-agent", "live-agent", replicas, cmd, home=sup.config.home.resolve()) as w:
        assert w.wait(timeout=30) == [0] * replicas


def wait_for(fn: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


def test_replicas_and_restart_fold_into_one_apd_then_deviation_is_a_story(
    pipeline: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(pipeline.config.db_url)
    listener = Listener()
    egress = f"egress:127.0.0.1:{listener.port}/tcp"
    started = time.monotonic()

    run_agent(pipeline, monkeypatch, listener.port, replicas=2)
    # Syscalls and file opens are coalesced: the profiler's flush publishes them once the agent is quiet.
    apd = wait_for(
        lambda: (
            (a := store.latest_artifact("agents/live-agent", "apd"))
            and egress in a["behaviours"].get("egress", [])
            and len(a["pods_seen"]) == 2
            and "syscall:connect" in a["behaviours"].get("syscalls", [])
            and a
        ),
        timeout=45,
    )
    # The entrypoint's own exec too: the sensor is attached before `runward up` says it is up.
    assert f"exec:{sys.executable}" in apd["behaviours"]["exec"]
    assert any(b.endswith("/true") for b in apd["behaviours"]["exec"])
    assert "syscall:connect" in apd["behaviours"].get("syscalls", [])
    assert apd["window_status"] in {"learning", "stable"}

    # The Deployment restarts: new pods, same behaviour. Still one APD; nothing new learnt.
    time.sleep(3)
    before = store.latest_artifact("agents/live-agent", "apd")
    assert before is not None
    run_agent(pipeline, monkeypatch, listener.port, replicas=1)
    time.sleep(6)
    after = store.latest_artifact("agents/live-agent", "apd")
    assert after is not None
    # File opens and syscalls are published coalesced; what the agent executes and reaches must not move.
    for category in ("exec", "egress", "ingress"):
        assert after["behaviours"].get(category) == before["behaviours"].get(category)
    assert [a["deployment"] for a in store.agents()].count("agents/live-agent") == 1
    assert after["window_started_at"] == apd["window_started_at"]

    # After the window a new binary is a deviation: it becomes an attack story, not baseline.
    time.sleep(max(0.0, started + WINDOW_S + 2 - time.monotonic()))
    run_agent(pipeline, monkeypatch, listener.port, replicas=1, extra="/bin/hostname")
    story = wait_for(
        lambda: next(
            (
                s
                for s in store.stories("agents/live-agent")
                if any(str(x["behaviour"]).endswith("/hostname") for x in s["signals"])
            ),
            None,
        ),
        timeout=40,
    )
    assert story["status"] == StoryStatus.POTENTIAL_COMPROMISE and "process" in story["surfaces"]
    final = store.latest_artifact("agents/live-agent", "apd")
    assert final is not None and final["window_status"] == "complete"
    assert not any(b.endswith("/hostname") for b in final["behaviours"]["exec"])

    response = httpx.get(
        f"http://127.0.0.1:{pipeline.config.api_port}/v1/agents/agents/live-agent",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["service_account"] == "live-agent"
