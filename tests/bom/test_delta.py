"""Declared vs observed: each finding kind, and silence where the declaration says nothing."""

from __future__ import annotations

from runward.core.contracts import DeclaredManifest, utcnow
from services.bom.declared import declared_bom
from services.bom.delta import compute_delta, same_model
from services.bom.evidence import RuntimeEvidence, fold
from tests.bom.factories import SITE, chat, connected, event, opened, tool_call, tools_list

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "support-bot",
        "namespace": "agents",
        "annotations": {"runward.io/egress": "kb.internal.example.com"},
    },
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "agent",
                        "image": "support-bot:1",
                        "env": [{"name": "OPENAI_MODEL", "value": "gpt-4o-2024-08-06"}],
                    }
                ]
            }
        }
    },
}
MCP = {
    "mcpServers": {
        "time": {"command": "python", "args": ["-m", "mcp_server_time"], "tools": ["get_current_time", "convert_time"]}
    }
}


def declare(**fields: object) -> DeclaredManifest:
    return DeclaredManifest(deployment="agents/support-bot", submitted_at=utcnow(), **fields)  # type: ignore[arg-type]


def observe(*events: object) -> RuntimeEvidence:
    evidence = None
    for e in events:
        evidence, _ = fold(evidence, e)  # type: ignore[arg-type]
    assert evidence is not None
    return evidence


def kinds(findings: list) -> dict[str, set[str]]:  # type: ignore[type-arg]
    out: dict[str, set[str]] = {}
    for f in findings:
        out.setdefault(f.kind, set()).add(f.subject)
    return out


def test_packages_undeclared_drifted_and_not_loaded() -> None:
    evidence = observe(
        opened(f"{SITE}/httpx/__pycache__/__init__.cpython-311.pyc"),
        opened(f"{SITE}/httpx-0.28.1.dist-info/METADATA"),
        opened(f"{SITE}/yaml/__pycache__/__init__.cpython-311.pyc"),
        opened(f"{SITE}/PyYAML-6.0.2.dist-info/METADATA"),
        opened(f"{SITE}/requests/__pycache__/__init__.cpython-311.pyc"),
        opened(f"{SITE}/mcp_server_time/__pycache__/__init__.cpython-311.pyc"),
    )
    declared = declared_bom(declare(requirements=["httpx==0.28.1", "PyYAML==6.0.1", "openai==1.50.0"], mcp_config=MCP))
    findings = compute_delta(declared, evidence)
    found = kinds(findings)
    assert found["undeclared_package"] == {"requests"}  # mcp_server_time is declared by the MCP config
    assert found["version_drift"] == {"pyyaml"}
    drift = next(f for f in findings if f.kind == "version_drift")
    assert (drift.declared, drift.observed) == ("6.0.1", "6.0.2")
    assert found["declared_not_loaded"] == {"openai"}


def test_no_requirements_submitted_means_no_package_findings() -> None:
    evidence = observe(opened(f"{SITE}/requests/__pycache__/__init__.cpython-311.pyc"))
    assert compute_delta(declared_bom(declare(deployment_manifest=DEPLOYMENT)), evidence) == []


def test_model_resolved_differently_than_pinned() -> None:
    evidence = observe(
        chat("openai", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        chat("openai", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"),
        chat("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        connected("api.openai.com", "162.159.140.245"),
    )
    findings = [f for f in compute_delta(declared_bom(declare(deployment_manifest=DEPLOYMENT)), evidence)]
    drifts = {(f.subject, f.observed) for f in findings if f.kind == "model_drift"}
    assert drifts == {("openai/gpt-4o-2024-08-06", "gpt-4o-2024-11-20"), ("openai/gpt-4o-mini", "gpt-4o-mini")}
    assert not [f for f in findings if f.kind == "undeclared_endpoint"]  # the provider's API is implied


def test_alias_and_snapshot_matching() -> None:
    assert same_model("gpt-4o", "gpt-4o-2024-08-06")
    assert same_model("claude-3-5-sonnet", "claude-3-5-sonnet-20241022")
    assert not same_model("gpt-4o", "gpt-4o-mini")
    assert not same_model("gpt-4o-2024-08-06", "gpt-4o-2024-11-20")


def test_late_tools_undeclared_tools_and_servers() -> None:
    evidence = observe(
        event("exec", {"binary": "/usr/local/bin/python"}, at=0),
        tools_list("time", ["convert_time", "get_current_time"], at=1),
        tools_list("time", ["convert_time", "get_current_time", "delete_records"], at=30),
        tool_call("shell", "run", at=2),
    )
    found = kinds(compute_delta(declared_bom(declare(mcp_config=MCP)), evidence))
    assert found["late_tool"] == {"time/delete_records"}
    assert found["undeclared_tool"] == {"time/delete_records"}
    assert found["undeclared_mcp_server"] == {"shell"}


def test_undeclared_endpoints_skip_dns_and_loopback() -> None:
    evidence = observe(
        connected("kb.internal.example.com", "10.1.2.3"),
        connected("pastebin.com", "104.20.1.1"),
        connected(None, "203.0.113.9", port=8443),
        connected(None, "10.96.0.10", port=53),
        connected("localhost", "127.0.0.1", port=8931),
    )
    findings = compute_delta(declared_bom(declare(deployment_manifest=DEPLOYMENT)), evidence)
    assert kinds(findings) == {"undeclared_endpoint": {"pastebin.com:443/tcp", "203.0.113.9:8443/tcp"}}
    ip_only = next(f for f in findings if f.subject.startswith("203."))
    assert "only an address" in ip_only.detail


def test_nothing_observed_yet_means_no_findings() -> None:
    assert compute_delta(declared_bom(declare(requirements=["httpx==0.28.1"])), None) == []
