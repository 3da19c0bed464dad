"""The bundle's tool policy end to end in pure code: tool calls through ingest and the profiler,
the APD revision's argument rules, the enforcer's tool policy, and the core's check that the
gateway runs. A refused call (the gateway's flag) is never learnt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runward.core.contracts import (
    ApdRevision,
    Attribution,
    EnforcementMode,
    EnrichedEvent,
    RawLlmEvent,
)
from runward.core.tool_arguments import call_violations
from services.enforcer.domain import EnforcerState, bundle
from services.ingest import domain
from services.profiler.apd import fold
from tests.unit.test_profiler_tools import AFTER, AGENT, POLICY, SRC, T0, learnt_agent


def latest_revision(agent: Any) -> ApdRevision:
    from services.profiler.apd import _revision, window_status

    state = agent.state
    return _revision(state, state.watermark, window_status(state, state.watermark, POLICY), {}, POLICY)


def test_apd_revision_carries_argument_rules_the_enforcer_turns_into_the_tool_policy() -> None:
    apd = latest_revision(learnt_agent())
    assert apd.tool_arguments is not None
    limit = apd.tool_arguments["reports/list_reports"]["limit"]
    assert limit.types == ["number"] and limit.min_value is not None and limit.max_value is not None
    assert limit.min_value <= 10 and limit.max_value >= 50  # robust bounds, never the exact range
    assert apd.tool_arguments["reports/export_report"]["format"].values == ["csv", "pdf"]
    assert apd.tool_arguments["reports/list_reports"]["folder"].path_prefixes == ["/data/reports"]

    for mode in EnforcementMode:
        policy = bundle(EnforcerState(deployment=AGENT, revision=1, apd=apd, mode=mode), AFTER).tool_policy
        assert policy is not None
        assert [r.tool for r in policy.tools] == [
            "reports/export_report",
            "reports/list_reports",
            "reports/send_email",
        ]
    rules = {r.tool: r for r in policy.tools}
    listing = rules["reports/list_reports"]
    assert call_violations(listing, {"folder": "/data/reports/2027", "limit": 30}) == []
    [huge] = call_violations(listing, {"folder": "/data/reports/2027", "limit": 1_000_000})
    assert huge.startswith("limit: above the learnt maximum") and "1000000" not in huge
    [shadow] = call_violations(listing, {"folder": "/etc/shadow", "limit": 10})
    assert shadow.startswith("folder: path outside the learnt prefixes")
    [new] = call_violations(listing, {"folder": "/data/reports", "limit": 10, "recursive": True})
    assert new == "recursive: an argument never seen in observation"
    [fmt] = call_violations(rules["reports/export_report"], {"report_id": "1001", "format": "xlsx"})
    assert fmt.startswith("format: not one of the 2 learnt values")
    [mail] = call_violations(rules["reports/send_email"], {"to": "x@evil.example", "subject": "Report 1 ready"})
    assert mail.startswith("to: domain never seen")


def _refused_call(n: int, tool: str, **arguments: Any) -> list[EnrichedEvent]:
    raw = RawLlmEvent(
        event_id=f"refused-{n}",
        ts=T0 + timedelta(minutes=1, seconds=n),
        operation="execute_tool",
        attribution=Attribution(deployment=AGENT),
        mcp_server="reports",
        tool_name=tool,
        tool_arguments=arguments,
        refused=True,
    )
    return domain.enrich_llm({}, raw, SRC)


def test_a_refused_call_is_never_learnt_even_in_the_window() -> None:
    agent = learnt_agent()
    state = agent.state
    for n in range(6):
        for event in _refused_call(n, "delete_all", confirm="yes"):
            assert event.detail.refused  # type: ignore[union-attr]
            state = fold(state, event, POLICY).state
        for event in _refused_call(100 + n, "list_reports", folder="/etc", limit=10**9):
            state = fold(state, event, POLICY).state
    agent.state = state
    apd = latest_revision(agent)
    assert "tool:reports/delete_all" not in apd.behaviours.get("mcp_tools", [])
    assert "tool:reports/list_reports" in apd.behaviours["mcp_tools"]
    assert apd.tool_arguments is not None and "reports/delete_all" not in apd.tool_arguments
    limit = apd.tool_arguments["reports/list_reports"]["limit"]
    assert limit.max_value is not None and limit.max_value < 10**6
    assert apd.tool_arguments["reports/list_reports"]["folder"].path_prefixes == ["/data/reports"]
