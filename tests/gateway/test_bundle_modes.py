"""The gateway applies the agent's policy bundle at its mode, between the official MCP client
and the real mcp-server-time, with the bundle read from runward.policies on the real broker:
observe records, audit records and publishes would-be refusals as AuditEvidence, enforce refuses
(and hides refused tools from tools/list); no bundle is observe. A bundle built by the real
profiler and enforcer code is applied the same way."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from mcp import MCPError

from edges.gateway.bundle import FixedBundle
from edges.gateway.session import REFUSED, AgentIdentity, GatewaySession
from runward.core.contracts import (
    ArgumentRule,
    AuditEvidence,
    BundleToolPolicy,
    EnforcementMode,
    PolicyBundle,
    ToolRule,
    utcnow,
)
from runward.core.kafka import RecordProducer
from runward.core.topics import AUDIT_EVIDENCE, POLICIES
from services.enforcer.domain import EnforcerState, bundle
from services.ingest import domain as ingest
from services.profiler.apd import fold
from tests.gateway.test_stdio_gateway import TIME_SERVER, connect, gateway, recorded
from tests.kafka_reading import read_records
from tests.unit.test_profiler_tools import AFTER, POLICY, SRC, learnt_agent
from tests.unit.test_tool_policy import latest_revision

PARIS = {"timezone": "Europe/Paris"}
TOKYO = {"timezone": "Asia/Tokyo"}  # outside the learnt values
CONVERT = {"source_timezone": "UTC", "time": "09:30", "target_timezone": "Asia/Tokyo"}  # tool not in the APD


def time_bundle(deployment: str, mode: EnforcementMode) -> PolicyBundle:
    return PolicyBundle(
        deployment=deployment,
        revision=3,
        created_at=utcnow(),
        apd_revision=7,
        mode=mode,
        egress_allowlist=[],
        network_policy={},
        seccomp_profile={},
        tool_policy=BundleToolPolicy(
            tools=[
                ToolRule(
                    tool="time/get_current_time",
                    arguments={"timezone": ArgumentRule(types=["string"], values=["Europe/Paris", "UTC"])},
                )
            ]
        ),
    )


def publish(kafka: str, record: PolicyBundle) -> None:
    producer = RecordProducer(kafka, "test-bundle")
    producer.send(POLICIES, record.deployment, record)
    assert producer.close() == 0


def run_agent(kafka: str, deployment: str) -> dict[str, Any]:
    """list tools, call get_current_time in and out of its argument rule, call convert_time."""

    async def agent() -> dict[str, Any]:
        params = gateway(kafka, deployment, "time", TIME_SERVER, "--bundle-from-topic", "--refresh-s", "60")
        outcome: dict[str, Any] = {}
        async with connect(params) as session:
            outcome["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            for label, tool, arguments in [
                ("paris", "get_current_time", PARIS),
                ("tokyo", "get_current_time", TOKYO),
                ("convert", "convert_time", CONVERT),
            ]:
                try:
                    result = await session.call_tool(tool, arguments)
                    outcome[label] = result.content[0].text  # type: ignore[union-attr]
                except MCPError as refused:
                    outcome[label] = refused.error
        return outcome

    return anyio.run(agent)


@pytest.fixture
def deployment() -> str:
    return f"agents/bundle-{uuid.uuid4().hex[:8]}"


def calls(kafka: str, deployment: str) -> dict[str, Any]:
    events = recorded(kafka, deployment, want=5)
    return {
        f"{e.tool_name}:{(e.tool_arguments or {}).get('timezone', '')}": e
        for e in events
        if e.operation == "execute_tool"
    }


def evidence_of(kafka: str, deployment: str, want: int, timeout: float = 20.0) -> list[AuditEvidence]:
    records = read_records(kafka, AUDIT_EVIDENCE.name, lambda v: v.get("deployment") == deployment, want, timeout)
    return [AuditEvidence.model_validate(v) for _, v in records]


def test_enforce_refuses_outside_the_bundle_and_hides_refused_tools(kafka_bootstrap: str, deployment: str) -> None:
    publish(kafka_bootstrap, time_bundle(deployment, EnforcementMode.ENFORCE))
    out = run_agent(kafka_bootstrap, deployment)
    assert out["tools"] == ["get_current_time"]  # convert_time is hidden
    assert "Europe/Paris" in out["paris"]
    assert out["tokyo"].code == REFUSED and "timezone: not one of the 2 learnt values" in out["tokyo"].message
    assert out["convert"].code == REFUSED and "time/convert_time is not in the agent's APD" in out["convert"].message
    recorded_calls = calls(kafka_bootstrap, deployment)
    assert not recorded_calls["get_current_time:Europe/Paris"].refused
    assert recorded_calls["get_current_time:Asia/Tokyo"].refused
    assert recorded_calls["convert_time:"].refused


def test_audit_lets_calls_through_and_publishes_would_be_refusals(kafka_bootstrap: str, deployment: str) -> None:
    publish(kafka_bootstrap, time_bundle(deployment, EnforcementMode.AUDIT))
    out = run_agent(kafka_bootstrap, deployment)
    assert out["tools"] == ["convert_time", "get_current_time"]
    assert "Europe/Paris" in out["paris"] and "Asia/Tokyo" in out["tokyo"] and isinstance(out["convert"], str)
    evidence = evidence_of(kafka_bootstrap, deployment, want=2)
    assert sorted(e.action for e in evidence) == ["time/convert_time", "time/get_current_time"]
    assert {e.source.value for e in evidence} == {"gateway"} and {e.bundle_revision for e in evidence} == {3}
    assert all("Asia/Tokyo" not in e.model_dump_json() for e in evidence)  # reasons never carry values
    recorded_calls = calls(kafka_bootstrap, deployment)
    assert not any(e.refused for e in recorded_calls.values())
    assert "would be refused, audit only" in recorded_calls["convert_time:"].output_messages[0]


@pytest.mark.parametrize("with_bundle", [True, False], ids=["observe-bundle", "no-bundle"])
def test_observe_and_no_bundle_never_refuse(kafka_bootstrap: str, deployment: str, with_bundle: bool) -> None:
    if with_bundle:
        publish(kafka_bootstrap, time_bundle(deployment, EnforcementMode.OBSERVE))
    out = run_agent(kafka_bootstrap, deployment)
    assert out["tools"] == ["convert_time", "get_current_time"]
    assert all(isinstance(out[k], str) for k in ("paris", "tokyo", "convert"))
    recorded_calls = calls(kafka_bootstrap, deployment)
    assert not any(e.refused for e in recorded_calls.values())
    note = recorded_calls["convert_time:"].output_messages[0]
    assert ("would be refused, observe only" in note) is with_bundle
    assert evidence_of(kafka_bootstrap, deployment, want=1, timeout=3) == []


def test_a_bundle_from_the_profiler_and_enforcer_is_enforced() -> None:
    """The learnt reports agent (services/profiler) -> APD revision -> enforcer bundle -> session."""
    apd = latest_revision(learnt_agent())
    state = EnforcerState(deployment=apd.deployment, revision=4, apd=apd, mode=EnforcementMode.ENFORCE)
    session = GatewaySession(
        AgentIdentity(apd.deployment), None, server_name="reports", bundles=FixedBundle(bundle(state, AFTER))
    )

    def call(id_: int, tool: str, **arguments: Any) -> Any:
        return session.from_client(
            {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        )

    ok = call(1, "list_reports", folder="/data/reports/2026", limit=20)
    assert ok.to_server and not ok.to_client
    huge = call(2, "list_reports", folder="/data/reports/2026", limit=1_000_000)
    assert not huge.to_server and huge.to_client[0]["error"]["code"] == REFUSED
    assert "limit: above the learnt maximum" in huge.to_client[0]["error"]["message"]
    assert huge.events[0].refused and huge.events[0].tool_name == "list_reports"
    unknown = call(3, "delete_report", report_id="1001")
    assert unknown.to_client[0]["error"]["code"] == REFUSED
    session.from_client({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {}})
    listing = session.from_server(
        {"jsonrpc": "2.0", "id": 4, "result": {"tools": [{"name": "list_reports"}, {"name": "delete_report"}]}}
    )
    assert listing.to_client[0]["result"]["tools"] == [{"name": "list_reports"}]


def test_what_the_gateway_refused_is_never_learnt() -> None:
    """The gateway's own refused records, through ingest and the profiler during the window: the
    refused tool never enters the APD, and refused arguments never widen a learnt profile."""
    agent = learnt_agent()
    apd = latest_revision(agent)
    state = EnforcerState(deployment=apd.deployment, revision=4, apd=apd, mode=EnforcementMode.ENFORCE)
    session = GatewaySession(
        AgentIdentity(apd.deployment), None, server_name="reports", bundles=FixedBundle(bundle(state, AFTER))
    )
    refused = []
    for n in range(8):
        for tool, arguments in [("delete_report", {"report_id": str(n)}), ("list_reports", {"limit": 10**9 + n})]:
            message = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
            refused += session.from_client(message).events
    assert len(refused) == 16 and all(e.refused for e in refused)
    agent.state.window_started_at = refused[0].ts  # still learning when the refusals arrive
    for raw in refused:
        for event in ingest.enrich_llm(agent.registry, raw, SRC):
            agent.state = fold(agent.state, event, POLICY).state
    relearnt = latest_revision(agent)
    assert "tool:reports/delete_report" not in relearnt.behaviours.get("mcp_tools", [])
    assert relearnt.tool_arguments is not None and "reports/delete_report" not in relearnt.tool_arguments
    limit = relearnt.tool_arguments["reports/list_reports"]["limit"]
    assert limit.max_value is not None and limit.max_value < 10**6
