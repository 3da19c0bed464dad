"""CLI hooks, preflight reasons and the metrics formats (no kernel needed)."""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

import pytest

from runward.control.broker import free_port
from runward.control.cli import main
from sensor import cli, preflight
from sensor.metrics import Metrics, serve


def parsed(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> tuple[str, argparse.Namespace]:
    """Which sensor command `runward ARGV` reaches, and with what (the command is not run)."""
    seen: list[tuple[str, argparse.Namespace]] = []
    for name in ("cmd_run", "cmd_sensor"):

        def record(args: argparse.Namespace, name: str = name) -> int:
            seen.append((name, args))
            return 0

        monkeypatch.setattr(cli, name, record)
    assert main(argv) == 0
    assert len(seen) == 1
    return seen[0]


def test_run_and_sensor_are_wired_on_the_main_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    command, args = parsed(
        monkeypatch,
        [
            "run",
            "--deployment",
            "agents/researcher",
            "--service-account",
            "researcher",
            "--replicas",
            "3",
            "--",
            "python",
            "agent.py",
            "--flag",
        ],
    )
    assert command == "cmd_run"
    assert (args.deployment, args.service_account, args.replicas) == ("agents/researcher", "researcher", 3)
    assert args.cmd == ["python", "agent.py", "--flag"]
    command, sensor = parsed(monkeypatch, ["sensor", "--kafka", "k:9092", "--dns-port", "53", "--dns-port", "5353"])
    assert command == "cmd_sensor"
    assert (sensor.kafka, sensor.dns_port, sensor.kubernetes) == ("k:9092", [53, 5353], None)
    assert parsed(monkeypatch, ["sensor", "--no-kubernetes"])[1].kubernetes is False


def test_ready_file_is_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, args = parsed(monkeypatch, ["sensor", "--ready-file", str(tmp_path / "state" / "sensor.ready")])
    assert args.ready_file == tmp_path / "state" / "sensor.ready"
    cli._write_ready(args.ready_file, "rw_exec, rw_exit")
    assert "programs rw_exec, rw_exit" in args.ready_file.read_text()
    assert [p.name for p in args.ready_file.parent.iterdir()] == ["sensor.ready"]  # no temp file left


def test_run_without_a_command_explains_the_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--deployment", "a/b", "--service-account", "b", "--"]) == 2
    assert "after --" in capsys.readouterr().err


def test_run_rejects_a_bad_deployment_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNWARD_HOME", str(tmp_path))
    assert main(["run", "--deployment", "NoNamespace", "--service-account", "b", "--", "true"]) == 1
    assert "namespace/name" in capsys.readouterr().err


@pytest.mark.parametrize(("codes", "status"), [([0, 0], 0), ([0, 3], 3), ([-9], 137), ([2, -15], 2)])
def test_exit_status_of_replicas(codes: list[int], status: int) -> None:
    assert cli._exit_status(codes) == status


def test_unavailable_reasons_are_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "effective_capabilities", lambda: 0)
    assert "root" in (cli.sensor_unavailable_reason() or "")
    monkeypatch.setattr(preflight, "effective_capabilities", lambda: (1 << 39) | (1 << 38))
    monkeypatch.setattr(preflight, "BTF", Path("/nonexistent/vmlinux"))
    assert "CONFIG_DEBUG_INFO_BTF" in (cli.sensor_unavailable_reason() or "")
    monkeypatch.setattr(preflight, "kernel_version", lambda release=None: (5, 4))
    assert "too old" in (cli.sensor_unavailable_reason() or "")


def test_sensor_command_prints_why_it_cannot_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(preflight, "effective_capabilities", lambda: 0)
    assert main(["sensor", "--kafka", "127.0.0.1:1"]) == 1
    assert "runward sensor cannot start" in capsys.readouterr().err


def test_kernel_version_parsing() -> None:
    assert preflight.kernel_version("6.18.44-fc-v669") == (6, 18)
    assert preflight.kernel_version("5.15.0-91-generic") == (5, 15)


def test_prometheus_text_and_json_endpoint() -> None:
    m = Metrics()
    m.inc("runward_sensor_events_total", kind="exec")
    m.inc("runward_sensor_events_total", 2, kind="file_open")
    m.set("runward_sensor_ready", 1)
    m.inc("runward_sensor_dedup_folded_total", kind='we"ird')
    text = m.prometheus()
    assert "# TYPE runward_sensor_events_total counter" in text
    assert 'runward_sensor_events_total{kind="file_open"} 2' in text
    assert "# TYPE runward_sensor_ready gauge" in text and "runward_sensor_ready 1" in text
    assert 'kind="we\\"ird"' in text
    port = free_port()
    server = serve(m, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            assert r.read().decode() == text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics.json", timeout=2) as r:
            assert json.loads(r.read())["runward_sensor_events_total"] == {"kind=exec": 1, "kind=file_open": 2}
    finally:
        server.shutdown()
        server.server_close()
