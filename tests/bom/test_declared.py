"""Reading what an agent declares: manifest, requirements / lock files, MCP configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runward.core.contracts import DeclaredManifest, utcnow
from runward.core.redaction import REDACTED
from services.bom.declared import (
    DeclaredError,
    declared_bom,
    load_deployment_yaml,
    parse_mcp_config,
    parse_requirements,
    redact_mcp_config,
    requirements_from_text,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "bom"


def test_requirements_pins_hashes_markers_and_options() -> None:
    lines = requirements_from_text("requirements.txt", (DATA / "requirements.txt").read_text())
    packages = {p.name: p for p in parse_requirements(lines)}
    assert set(packages) == {"httpx", "pyyaml", "openai", "anyio"}
    assert packages["httpx"].version == "0.28.1"  # continuation line and --hash stripped
    assert packages["pyyaml"].version == "6.0.1"
    assert packages["openai"].version is None and packages["openai"].specifier == ">=1.40"
    assert packages["anyio"].version == "4.16.0"


def test_lock_files_become_pinned_lines() -> None:
    assert requirements_from_text("poetry.lock", (DATA / "poetry.lock").read_text()) == [
        "httpx==0.28.1",
        "pyyaml==6.0.2",
    ]
    pipfile = json.dumps({"default": {"requests": {"version": "==2.32.3"}}, "develop": {}})
    assert requirements_from_text("Pipfile.lock", pipfile) == ["requests==2.32.3"]
    pyproject = '[project]\nname = "agent"\ndependencies = ["mcp>=1.9", "httpx==0.28.1"]\n'
    assert requirements_from_text("pyproject.toml", pyproject) == ["mcp>=1.9", "httpx==0.28.1"]


def test_a_bad_requirement_names_the_line() -> None:
    with pytest.raises(DeclaredError, match="not PEP 508"):
        parse_requirements(["httpx ==> 1"])


def test_deployment_manifest_is_picked_from_multi_documents_and_secrets_redacted() -> None:
    doc = load_deployment_yaml((DATA / "deployment.yaml").read_text(), "agents/support-bot")
    assert doc["kind"] == "Deployment"
    env = {e["name"]: e.get("value") for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OPENAI_API_KEY"] == REDACTED and env["OPENAI_MODEL"] == "gpt-4o-2024-08-06"
    assert env["CACHE_URL"] == f"redis://default:{REDACTED}@cache.agents.svc:6379/0"
    with pytest.raises(DeclaredError, match="no Deployment agents/other"):
        load_deployment_yaml((DATA / "deployment.yaml").read_text(), "agents/other")
    with pytest.raises(DeclaredError, match="no kind: Deployment"):
        load_deployment_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")


def test_mcp_config_claude_desktop_style() -> None:
    servers = {s.name: s for s in parse_mcp_config(json.loads((DATA / "mcp.json").read_text()))}
    assert set(servers) == {"time", "github", "docs"}  # disabled servers are not declared
    assert servers["time"].package == "pypi:mcp-server-time" and servers["time"].tools is None
    assert servers["github"].package == "npm:@modelcontextprotocol/server-github@2025.4.8"
    assert servers["github"].tools == ["get_issue", "list_issues"]
    assert servers["docs"].transport == "http" and servers["docs"].url == "https://mcp.docs.example.com/mcp"


def test_mcp_config_vscode_style_and_launch_targets() -> None:
    servers = {s.name: s for s in parse_mcp_config(json.loads((DATA / "vscode-mcp.json").read_text()))}
    assert servers["time"].module == "mcp_server_time"
    assert servers["fetch"].package == "pypi:mcp-server-fetch==2025.4.7"
    with pytest.raises(DeclaredError, match="mcpServers"):
        parse_mcp_config({"other": {}})


def test_mcp_config_secrets_are_redacted_before_publishing() -> None:
    clean = redact_mcp_config(json.loads((DATA / "mcp.json").read_text()))
    assert clean["mcpServers"]["github"]["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"] == REDACTED
    assert "abcdefghijklmnop" not in json.dumps(clean)


def test_declared_bom_combines_every_source() -> None:
    manifest = DeclaredManifest(
        deployment="agents/support-bot",
        submitted_at=utcnow(),
        deployment_manifest=load_deployment_yaml((DATA / "deployment.yaml").read_text()),
        requirements=requirements_from_text("requirements.txt", (DATA / "requirements.txt").read_text()),
        mcp_config=json.loads((DATA / "mcp.json").read_text()),
    )
    bom = declared_bom(manifest)
    gateway_digest = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
    assert bom.images == [f"ghcr.io/example/runward-gateway@{gateway_digest}", "ghcr.io/example/support-bot:1.4.2"]
    assert {(m.provider, m.name) for m in bom.models} == {
        ("openai", "gpt-4o-2024-08-06"),
        ("openai", "text-embedding-3-small"),
    }
    assert "openai" in bom.providers and "api.openai.com" in bom.endpoints
    assert {"kb.internal.example.com", "10.0.0.0/8", "mcp.docs.example.com", "cache.agents.svc"} <= set(bom.endpoints)
    assert bom.packages["mcp-server-time"].source == "mcp:time"  # what uvx runs is declared too
    assert bom.has_manifest and bom.has_requirements and bom.has_mcp_config
