"""The CLI hook: `runward declare`, `runward gateway`, `runward otlp` as the main CLI wires them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runward.control.broker import free_port
from runward.control.cli import main
from tests.bom.stage_util import REPO
from tests.kafka_reading import read_records
from tests.sources.otlp_util import chat_span, export_request, k8s_resource

DATA = Path(__file__).resolve().parents[1] / "data" / "bom"


def test_observe_commands_are_wired_with_their_options(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("declare", "gateway", "otlp"):
        assert main([command, "--help"]) == 0
        assert "--kafka" in capsys.readouterr().out
    assert main(["otlp", "--port", "not-a-port"]) == 2
    assert "Invalid value for '--port'" in capsys.readouterr().err


def test_declare_dry_run_prints_a_valid_build_bom(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "declare",
                "--deployment",
                "agents/support-bot",
                "--manifest",
                str(DATA / "deployment.yaml"),
                "--requirements",
                str(DATA / "poetry.lock"),
                "--mcp-config",
                str(DATA / "vscode-mcp.json"),
                "--dry-run",
            ]
        )
        == 0
    )
    bom = json.loads(capsys.readouterr().out)
    assert bom["metadata"]["lifecycles"] == [{"phase": "build"}]
    assert {"pypi:httpx@0.28.1", "pypi:pyyaml@6.0.2"} <= {c["bom-ref"] for c in bom["components"]}
    assert "sk-proj" not in json.dumps(bom)


def test_gateway_needs_exactly_one_transport(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--deployment", "agents/a"]) == 2
    assert "either a server command" in capsys.readouterr().err
    assert main(["gateway", "--server-name", "x", "--", "true"]) == 2  # no deployment: records need one


def test_otlp_command_serves_until_terminated(kafka_bootstrap: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runward.control.cli",
            "otlp",
            "--port",
            str(port),
            "--kafka",
            kafka_bootstrap,
            "--sender",
            "127.0.0.1=agents/cli-agent",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "RUNWARD_API_TOKENS": "cli:cli-sender-token-0123:sender"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = export_request({"service.name": "cli"}, [chat_span(model="cli-model")]).SerializeToString()
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/traces",
            content=body,
            headers={"content-type": "application/x-protobuf"},
            timeout=20,
        )
        assert reply.status_code == 401  # the intake is authenticated
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/traces",
            content=body,
            headers={"content-type": "application/x-protobuf", "Authorization": "Bearer cli-sender-token-0123"},
            timeout=20,
        )
        assert reply.status_code == 200
        records = read_records(kafka_bootstrap, "runward.raw.llm", lambda v: v["request_model"] == "cli-model", 1)
        assert records[0][1]["attribution"]["deployment"] == "agents/cli-agent"
        body = export_request(k8s_resource("agents", "x"), [chat_span()]).SerializeToString()
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/v1/traces",
                content=body,
                headers={"content-type": "application/x-protobuf", "Authorization": "Bearer cli-sender-token-0123"},
                timeout=20,
            ).status_code
            == 200
        )
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    # uvicorn shuts down cleanly, then re-raises SIGTERM: -15 is a clean stop, a traceback is not.
    assert proc.returncode in (0, -15) and b"Traceback" not in err, err.decode()[-2000:]
    assert b"Application shutdown complete" in err
