"""The Typer wiring: a wrapped command keeps its own options; a bad option is one line."""

from __future__ import annotations

import argparse

import pytest

import edges.gateway.cli
from runward.control.cli import main


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
