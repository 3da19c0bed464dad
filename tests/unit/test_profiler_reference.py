"""The profiler's outputs for a fixed sequence of events, against the recorded reference.

`fold` is tuned for speed (issue 14): what it publishes must not move while it is. A seeded
sequence covers what the profiler decides (learning and its coalescing, the window completing,
deviations, refused calls, tool-argument, sequence, burst and exfiltration signals, prompt
injection and multi-agent input, a rollout's drift, a hijack voiding it, an approver's
acceptance, redeliveries, events delivered late, flushes, a lossy sensor) over two agents whose
events interleave. Every APD revision and signal is compared, field for field, with
`tests/data/profiler/fold_reference.json`, which was recorded from the code before the tuning.
The final states are compared too, and every fold must leave the state it was given unchanged
(a record that fails leaves nothing behind).

To record the reference again after an intended change of behaviour (review the diff!):

    PYTHONPATH=$PWD .venv/bin/python tests/unit/test_profiler_reference.py
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runward.core.contracts import (
    BaselineAcceptInfo,
    ConnectInfo,
    DeploymentSpecInfo,
    DnsInfo,
    EnrichedEvent,
    EventDetail,
    ExecInfo,
    FileOpenInfo,
    FlushInfo,
    K8sApiInfo,
    LlmCallInfo,
    SourceRef,
    Surface,
)
from services.profiler.apd import ApdState, Policy, fold

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "profiler" / "fold_reference.json"
T0 = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
POLICY = Policy(window_override_s=900, drift_correlation_s=600)
R1, R2, R3 = ("sha256:" + c * 64 for c in "123")
AGENTS = ("agents/bot", "agents/helper")

FILES = [f"/usr/lib/python3.11/site-packages/pkg{n}/__init__.py" for n in range(12)] + [
    "/etc/resolv.conf",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
]
HOSTS = [("10.0.0.12", 5432, None), ("10.0.3.7", 443, "api.openai.com"), ("172.20.1.5", 6379, None)]
NAMES = ["api.openai.com", "crm.internal"]
BINARIES = [("/usr/bin/python3", ["-c", "x"]), ("/usr/bin/git", ["fetch", "origin"])]
READS = ["crm/lookup_order", "crm/search_kb", "crm/list_customers"]
SENDS = ["crm/send_mail", "crm/create_ticket"]


class Feed:
    """Builds an agent's enriched events the way ingest writes them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.n = 0

    def event(
        self,
        agent: str,
        at: float,
        surface: Surface,
        kind: str,
        detail: EventDetail,
        behaviour: str | None = None,
        *,
        pod: str = "1",
        revision: str | None = R1,
        flags: list[str] | None = None,
        partial: bool = False,
    ) -> EnrichedEvent:
        self.n += 1
        name = agent.split("/")[1]
        return EnrichedEvent(
            event_id=f"e{self.n}",
            ts=T0 + timedelta(seconds=at),
            deployment=agent,
            namespace="agents",
            pod=f"{name}-{pod}",
            service_account=f"{name}-sa",
            revision=revision,
            surface=surface,
            kind=kind,
            behaviour=behaviour,
            detail=detail,
            flags=flags or [],
            partial=partial,
            source=SourceRef(topic="runward.raw.sensor", partition=self.n % 3, offset=self.n),
        )

    def spec(self, agent: str, at: float, changed: bool, revision: str) -> EnrichedEvent:
        detail = DeploymentSpecInfo.model_validate(
            {
                "autonomy": "low",
                "changed": changed,
                "revision": revision,
                "pod_template_hash": revision[-9:],
                "selector": {"matchLabels": {"app": agent.split("/")[1]}},
            }
        )
        return self.event(agent, at, Surface.DEPLOYMENT, "deployment_spec", detail, revision=None)

    def tool(
        self, agent: str, at: float, tool: str, arguments: dict[str, Any], *, refused: bool = False, **kw: Any
    ) -> EnrichedEvent:
        server, name = tool.split("/")
        detail = LlmCallInfo(
            kind="execute_tool",
            operation="execute_tool",
            tool_name=name,
            mcp_server=server,
            tool_arguments=arguments,
            refused=refused,
        )
        return self.event(agent, at, Surface.TOOL, "execute_tool", detail, f"tool:{tool}", **kw)

    def arguments(self, tool: str, odd: bool) -> dict[str, Any]:
        rng = self.rng
        if tool in SENDS:
            domain = "evil.example" if odd else rng.choice(["corp.example", "partner.example"])
            return {"to": f"ops@{domain}", "subject": rng.choice(["daily", "weekly"]), "priority": rng.randint(1, 3)}
        if odd:
            return {"query": "x' OR 1=1; --", "limit": 10_000, "path": "/etc/shadow"}
        return {"query": rng.choice(["open", "closed", "late"]), "limit": rng.randint(10, 50), "path": "/data/crm"}

    def ordinary(self, agent: str, at: float, odd: bool, **kw: Any) -> EnrichedEvent:
        """One event of the agent's usual mix; `odd` draws outside what it usually does."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            path = f"/opt/new/{rng.randint(0, 3)}.so" if odd else rng.choice(FILES)
            return self.event(agent, at, Surface.FILE, "file_open", FileOpenInfo(path=path), f"file:{path}", **kw)
        if roll < 0.5:
            address, port, name = ("203.0.113.9", 443, "paste.example") if odd else rng.choice(HOSTS)
            detail = ConnectInfo(address=address, port=port, dns_name=name)
            return self.event(
                agent, at, Surface.NETWORK, "connect", detail, f"egress:{name or address}:{port}/tcp", **kw
            )
        if roll < 0.6:
            name = "exfil.example" if odd else rng.choice(NAMES)
            return self.event(agent, at, Surface.NETWORK, "dns", DnsInfo(name=name), f"dns:{name}", **kw)
        if roll < 0.7:
            binary, argv = ("/bin/sh", ["-c", "curl x"]) if odd else rng.choice(BINARIES)
            detail = ExecInfo(binary=binary, argv=[binary, *argv, str(rng.randint(0, 99_999))])
            return self.event(agent, at, Surface.PROCESS, "exec", detail, f"exec:{binary}", **kw)
        if roll < 0.78:
            flags = ["prompt_injection:ignore_previous:AML.T0051"] if odd else []
            detail = LlmCallInfo(kind="chat", operation="chat", provider="openai", request_model="gpt-4o")
            return self.event(agent, at, Surface.INPUT, "chat", detail, "llm:openai/gpt-4o", flags=flags, **kw)
        if roll < 0.85:
            code = 403 if rng.random() < 0.3 else 200
            resource = "secrets" if odd else "configmaps"
            detail = K8sApiInfo(verb="list", api_group="core", resource=resource, namespace="agents", code=code)
            key = f"k8s-api:list core/{resource} in agents"
            return self.event(agent, at, Surface.IDENTITY, "k8s_api", detail, key, **kw)
        tool = rng.choice([*READS, *SENDS, "crm/ping"])
        if tool == "crm/ping":  # a tool called without arguments
            return self.tool(agent, at, tool, {}, **kw)
        if odd and rng.random() < 0.5:
            kw["flags"] = ["multi_agent:agents/planner"]  # another agent's output drove the call
        return self.tool(agent, at, tool, self.arguments(tool, odd), refused=rng.random() < 0.05, **kw)


def sequence() -> list[EnrichedEvent]:
    """Two agents over 75 minutes: window (15 min), steady work, a rollout, a hijack, acceptance."""
    rng = random.Random(14)
    feed = Feed(rng)
    events = [feed.spec(agent, 0, False, R1) for agent in AGENTS]
    at = 0.0
    sent: list[EnrichedEvent] = []
    milestones = [2400.0, 3300.0, 3600.0, 4000.0]  # what happens once, at the first event after

    def add(event: EnrichedEvent) -> None:
        events.append(event)
        sent.append(event)

    while at < 4500:
        at += rng.expovariate(1 / 3)
        agent = rng.choice(AGENTS)
        late = rng.random() < 0.05  # delivered after later ones: its time is older than the last
        when = max(0.0, at - rng.uniform(1, 40)) if late else at
        roll = rng.random()
        if sent and roll < 0.03:
            events.append(rng.choice(sent[-50:]))  # a redelivery
        elif roll < 0.05:
            events.append(
                feed.event(agent, when + 10, Surface.DEPLOYMENT, "flush", FlushInfo(), revision=None, pod="flush")
            )
        elif 2400 <= at < 3000 and agent == AGENTS[0]:
            # A rollout of R2 (spec at 2400 s): its pods show new behaviours (drift), old pods too.
            new = rng.random() < 0.7
            add(feed.ordinary(agent, when, rng.random() < 0.3, pod="3" if new else "1", revision=R2 if new else R1))
        else:
            pod = rng.choice(["1", "2"]) if at < 1800 else rng.choice(["1", "2", "4"])
            add(feed.ordinary(agent, when, at > 900 and rng.random() < 0.04, pod=pod, partial=rng.random() < 0.002))
        due = milestones and at >= milestones[0]
        milestone = milestones.pop(0) if due else None
        if milestone == 2400:
            events.append(feed.spec(AGENTS[0], at, True, R2))
        if milestone == 3300:
            events.append(feed.spec(AGENTS[1], at, True, R3))
            for n in range(4):  # the rollout's drift, then a hijack in its window voids it
                events.append(feed.ordinary(AGENTS[1], at + n, True, pod="5", revision=R3))
            detail = K8sApiInfo(
                verb="create",
                api_group="rbac.authorization.k8s.io",
                resource="clusterrolebindings",
                namespace="cluster",
                code=201,
            )
            key = "k8s-api:create rbac.authorization.k8s.io/clusterrolebindings in cluster"
            events.append(feed.event(AGENTS[1], at + 5, Surface.IDENTITY, "k8s_api", detail, key, pod="5", revision=R3))
        if milestone == 3600:
            accepted = ["egress:paste.example:443/tcp", "file:/opt/new/1.so", "dns:not-a-known-kind-here"]
            detail = BaselineAcceptInfo(
                story_id="s1", approver="ann", reason="the new vector store", behaviours=[*accepted, "bogus"]
            )
            events.append(feed.event(AGENTS[0], at, Surface.DEPLOYMENT, "baseline_accept", detail, revision=None))
            events.append(feed.tool(AGENTS[1], at, "crm/delete_customer", {"id": 7}, refused=True))
        if milestone == 4000:  # a burst of tool calls, reads then a send to a new destination
            for n in range(45):
                tool = READS[n % 3] if n < 44 else SENDS[0]
                arguments = feed.arguments(tool, n == 44)
                events.append(feed.tool(AGENTS[0], at + n * 0.5, tool, arguments, pod="4"))
            at += 30
    return events


def replay() -> dict[str, Any]:
    """Fold the sequence; every output, per event, and the final states, as JSON."""
    states: dict[str, ApdState | None] = dict.fromkeys(AGENTS)
    outputs: list[dict[str, Any]] = []
    for n, event in enumerate(sequence()):
        state = states[event.deployment]
        before = state.model_dump() if state is not None else None
        result = fold(state, event, POLICY)
        assert (state.model_dump() if state is not None else None) == before, f"fold changed its input at {n}"
        states[event.deployment] = result.state
        if result.revision is not None:
            outputs.append({"event": n, "revision": result.revision.model_dump(mode="json")})
        for signal in result.signals:
            outputs.append({"event": n, "signal": signal.model_dump(mode="json")})
    return {
        "outputs": outputs,
        "states": {k: s.model_dump(mode="json") if s is not None else None for k, s in states.items()},
    }


def test_the_sequence_covers_what_the_profiler_decides() -> None:
    """A reference that never signals, drifts or accepts would let those paths change unseen."""
    outputs = json.loads(REFERENCE.read_text())["outputs"]
    signals = [o["signal"] for o in outputs if "signal" in o]
    revisions = [o["revision"] for o in outputs if "revision" in o]
    titles = " | ".join(s["title"] for s in signals)
    for part in (
        "outside APD baseline",
        "expected drift",
        "attempted, refused by the API server",
        "attempted, refused by the tool gateway",
        "tool argument outside APD profile",
        "tool call burst",
        "exfiltration via tool invocation",
        "prompt injection",
    ):
        assert part in titles, part
    assert {r["window_status"] for r in revisions} >= {"learning", "complete"}
    flags = {f for r in revisions for f in r["added"].get("_flags", [])}
    assert flags >= {"partial", "drift_voided", "deployment_revision"}
    assert any(r["pending"] for r in revisions), "drift pending approval"
    assert any("egress:paste.example:443/tcp" in r["behaviours"].get("egress", []) for r in revisions), "accepted"


def test_folding_the_sequence_publishes_exactly_the_recorded_revisions_and_signals() -> None:
    reference = json.loads(REFERENCE.read_text())
    got = replay()
    assert len(got["outputs"]) == len(reference["outputs"])
    for mine, recorded in zip(got["outputs"], reference["outputs"], strict=True):
        assert mine == recorded
    # The recorded states are read by today's model, as a state in the table's changelog is: one
    # written by the code the reference was recorded with must read as the state folded today.
    recorded = {
        k: ApdState.model_validate(s).model_dump(mode="json") if s else None for k, s in reference["states"].items()
    }
    assert got["states"] == recorded


def test_a_state_written_with_times_reads_as_the_same_instants() -> None:
    """Novelty times are kept as µs integers; a changelog state written before holds ISO times."""
    state = None
    for event in sequence()[:400]:
        if event.deployment == AGENTS[0]:
            state = fold(state, event, POLICY).state
    assert state is not None and len(state.novel_times) > 10
    written = state.model_dump(mode="json")
    written["novel_times"] = [
        (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=t)).isoformat().replace("+00:00", "Z")
        for t in state.novel_times
    ]
    assert ApdState.model_validate(written) == state
    written["novel_times"] = ["2026-11-30T09:00:00"]  # zone-less: not an instant
    with pytest.raises(ValueError, match="no time zone"):
        ApdState.model_validate(written)


if __name__ == "__main__":
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(replay(), indent=1, sort_keys=True) + "\n")
    print(f"recorded {REFERENCE}")
