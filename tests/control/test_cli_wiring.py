"""The Typer wiring: a wrapped command keeps its own options; a bad option is one line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import edges.gateway.cli
from runward.control.cli import main
from runward.core.store import upgrade


def test_gateway_hands_the_wrapped_server_command_over_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(edges.gateway.cli, "run", lambda args: seen.append(args) or 0)
    argv = ["gateway", "--deployment", "agents/a", "--mode", "enforce", "--", "uvx", "server", "--port", "9"]
    assert main(argv) == 0
    assert seen[0].cmd == ["uvx", "server", "--port", "9"]
    assert (seen[0].deployment, seen[0].mode, seen[0].port) == ("agents/a", "enforce", 8931)


def test_gateway_rejects_an_unknown_mode_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--deployment", "agents/a", "--mode", "audit", "--", "true"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --mode 'audit': expected observe or enforce"]


def test_reconcile_command_writes_the_report_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/runward.db"
    upgrade(db)
    data = Path(__file__).resolve().parents[1] / "data" / "posture"
    argv = ["reconcile", "--deployment", "ns1/agent", "--service-account", "sa1", "--db", db, "--no-publish"]
    audit = ["--audit", str(data / "audit2rbac_demo.log")]
    assert main([*argv, *audit, "--rbac", str(data / "rbac_sa1_overbroad.yaml"), "--out", str(tmp_path / "out")]) == 0
    # Hand-derived split of the demo log (tests/posture/test_demo_log_reconciliation.py).
    assert "ns1/agent: Kubernetes RBAC granted 39, used 2, unused 37" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"ns1_agent.reconciliation.{ext}" for ext in ("html", "json", "md")
    ]
    assert main([*argv, *audit, "--rbac", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err
