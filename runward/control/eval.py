"""`runward eval`: replay the scenario library through the real pipeline and check each outcome.

A scenario file (scenarios/builder.py documents the format) is a header with the expected
outcome and raw records. Every scenario runs under its own namespace, with its ids (UUIDs, W3C
trace and span ids) rewritten per run, so all of them run side by side in one pipeline and the
same library can run again on the same broker. Each scenario's recorded time is rebased so its
last event is now; the pipeline runs with a clock-skew allowance of days so recorded time stands.
Records are published phase by phase (a scenario's barriers split it into phases; phase k of
every scenario goes before any barrier k), then the store is polled until every scenario has its
expected stories, or the time is up, and until the pipeline is idle. The latency reported is from
the moment a scenario's last record was acknowledged to the moment its last expected story
was seen in the store.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runward.control.replay import _walk_times
from runward.core.codec import RejectedRecord, decode, encode
from runward.core.config import Settings
from runward.core.kafka import RecordProducer
from runward.core.topics import BY_NAME

PLACEHOLDER_NS = "rw-scenario"
EVAL_CLOCK_SKEW_S = 30 * 24 * 3600
_IDS = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32}\b|\b[0-9a-f]{16}\b")


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and line."""


@dataclass
class Expectation:
    deployment: str
    status: str
    surfaces: list[str] = field(default_factory=list)
    min_severity: int = 1
    spans: list[str] = field(default_factory=list)

    def text(self) -> str:
        name = self.deployment.split("/", 1)[-1]
        more = f" [{','.join(self.surfaces)}]" if self.surfaces else ""
        return f"{name}: {self.status}{more}"


@dataclass
class Scenario:
    path: Path
    name: str
    kind: str
    surfaces: list[str]
    description: str
    namespace: str
    deployments: list[str]
    expected: list[Expectation]
    policy_must_not_contain: list[str]
    phases: list[list[tuple[str, str | None, bytes] | float]]  # records (topic, key, payload) and pauses


@dataclass
class Outcome:
    scenario: Scenario
    passed: bool = False
    got: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last_sent: float | None = None
    matched_at: float | None = None
    narratives: list[list[str]] = field(default_factory=list)

    @property
    def latency_s(self) -> float | None:
        if self.matched_at is None or self.last_sent is None:
            return None
        return max(0.0, self.matched_at - self.last_sent)

    def as_dict(self) -> dict[str, Any]:
        sc = self.scenario
        return {
            "scenario": sc.name,
            "kind": sc.kind,
            "surfaces": sc.surfaces,
            "namespace": sc.namespace,
            "expected": [e.text() for e in sc.expected] or ["no story"],
            "got": self.got or ["no story"],
            "passed": self.passed,
            "problems": self.problems,
            "latency_s": None if self.latency_s is None else round(self.latency_s, 2),
            "narratives": self.narratives,
        }


def scenario_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.jsonl") if _has_header(p))
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or folder; give scenario files or a folder of them")
    if not files:
        raise ScenarioError(
            f"no scenario files (JSON lines starting with a 'scenario' header) in {', '.join(map(str, paths))}"
        )
    return files


def _has_header(path: Path) -> bool:
    with path.open() as fh:
        first = fh.readline()
    try:
        return isinstance(json.loads(first).get("scenario"), dict)
    except (json.JSONDecodeError, AttributeError):
        return False


def load(path: Path, namespace: str, salt: str, now: datetime) -> Scenario:
    """A scenario under `namespace`, its ids salted, its time rebased to `now`, every record
    checked against its topic's contract."""
    text = path.read_text().replace(PLACEHOLDER_NS, namespace)
    text = _IDS.sub(lambda m: _salted(m.group(0), salt), text)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not lines or not isinstance(lines[0].get("scenario"), dict):
        raise ScenarioError(f'{path}:1: the first line must be the scenario header {{"scenario": {{...}}}}')
    header = lines[0]["scenario"]
    items = lines[1:]
    latest: list[datetime] = []
    for item in items:
        if "value" in item:
            _walk_times(item["value"], lambda t: latest.append(t) or None)  # type: ignore[func-returns-value]
    shift = now - max(latest) if latest else timedelta(0)
    phases: list[list[tuple[str, str | None, bytes] | float]] = [[]]
    for number, item in enumerate(items, 2):
        if item.get("barrier"):
            phases.append([])
        elif "pause" in item:
            phases[-1].append(float(item["pause"]))
        else:
            topic = BY_NAME.get(item.get("topic", ""))
            if topic is None:
                raise ScenarioError(f"{path}:{number}: unknown topic {item.get('topic')!r}")
            value = _walk_times(item["value"], lambda t: t + shift)
            try:
                record = decode(topic, json.dumps(value).encode())
            except RejectedRecord as exc:
                raise ScenarioError(f"{path}:{number}: {exc}") from None
            phases[-1].append((topic.name, item.get("key"), encode(record)))
    expect = header.get("expect") or {}
    deployments = sorted({f"{namespace}/{e['deployment']}" for e in expect.get("stories", [])} | _deployments(items))
    return Scenario(
        path=path,
        name=str(header.get("name") or path.stem),
        kind=str(header.get("kind") or "?"),
        surfaces=list(header.get("surfaces") or []),
        description=str(header.get("description") or ""),
        namespace=namespace,
        deployments=deployments,
        expected=[
            Expectation(
                deployment=f"{namespace}/{e['deployment']}",
                status=e["status"],
                surfaces=list(e.get("surfaces") or []),
                min_severity=int(e.get("min_severity") or 1),
                spans=[f"{namespace}/{d}" for d in e.get("spans") or []],
            )
            for e in expect.get("stories", [])
        ],
        policy_must_not_contain=list(expect.get("policy_must_not_contain") or []),
        phases=phases,
    )


def _salted(value: str, salt: str) -> str:
    digest = hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()
    if "-" in value:
        return str(uuid.UUID(digest[:32]))
    return digest[: len(value)]


def _deployments(items: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for item in items:
        dep = ((item.get("value") or {}).get("attribution") or {}).get("deployment")
        if dep:
            found.add(dep)
    return found


# --- judging ---------------------------------------------------------------------------------


def _matches(story: dict[str, Any], exp: Expectation) -> bool:
    return (
        story["deployment"] == exp.deployment
        and story["status"] == exp.status
        and set(exp.surfaces) <= set(story["surfaces"])
        and story["severity"] >= exp.min_severity
        and set(exp.spans) <= {story["deployment"], *story.get("related_deployments", [])}
    )


def judge(
    scenario: Scenario, stories: list[dict[str, Any]], policies: list[dict[str, Any]]
) -> tuple[bool, list[str], list[str]]:
    """(passed, what it got, problems): every expectation met by its own story, no other story
    of the scenario's Deployments, and no forbidden string in any of their policies."""
    live = [s for s in stories if not s.get("merged_into")]
    got = [
        f"{s['deployment'].split('/', 1)[-1]}: {s['status']} [{','.join(s['surfaces'])}] sev {s['severity']}"
        + (
            f" spans {','.join(d.split('/', 1)[-1] for d in s.get('related_deployments', []))}"
            if s.get("related_deployments")
            else ""
        )
        for s in live
    ]
    problems: list[str] = []
    unused = list(live)
    for exp in scenario.expected:
        hit = next((s for s in unused if _matches(s, exp)), None)
        if hit is None:
            problems.append(f"missing story {exp.text()}")
        else:
            unused.remove(hit)
    problems += [f"unexpected story {g}" for s, g in zip(live, got, strict=True) if s in unused]
    problems += _leaks(scenario.policy_must_not_contain, policies)
    return not problems, got, problems


# What a bundle offers an approver, not what a cluster applies: a rollout's drift is listed there
# while it is pending, and is withdrawn when the evidence that voids it arrives. The sensor's
# events and the agent's spans come by different topics (spans are batch-exported seconds late),
# so an attacker's behaviour may be pending for a moment before the injection that voids it is
# read; it must never be in an applied document, and must not be left on offer.
_ON_OFFER = frozenset({"pending_widening"})


def _leaks(forbidden: list[str], policies: list[dict[str, Any]]) -> list[str]:
    """Forbidden strings in any revision's applied documents, or in the latest one's offer."""
    newest = {p.get("deployment"): p for p in sorted(policies, key=lambda p: p.get("revision", 0))}
    rendered = [
        (
            policy,
            json.dumps({k: v for k, v in policy.items() if k not in _ON_OFFER}),
            json.dumps({k: v for k, v in policy.items() if k in _ON_OFFER})
            if policy is newest.get(policy.get("deployment"))
            else "",
        )
        for policy in policies
    ]
    problems: list[str] = []
    for text in forbidden:
        for policy, applied, offered in rendered:
            where = "holds" if text in applied else "still offers for approval" if text in offered else ""
            if where:
                problems.append(
                    f"policy revision {policy.get('revision')} of {policy.get('deployment')} {where} {text!r}"
                )
    return problems


# --- running ---------------------------------------------------------------------------------


def publish(
    config: Settings | str, scenarios: list[Scenario], ingested: Callable[[int], bool], outcomes: dict[str, Outcome]
) -> int:
    """Publish phase k of every scenario, wait for ingest, then phase k+1; returns records sent."""
    producer = RecordProducer(config, "runward-eval", {"linger.ms": 5, "compression.type": "lz4"})
    sent = 0
    try:
        for k in range(max(len(s.phases) for s in scenarios)):
            last_of: dict[str, int] = {}
            for sc in scenarios:
                if k >= len(sc.phases):
                    continue
                for item in sc.phases[k]:
                    if isinstance(item, float):
                        producer.flush(30)
                        time.sleep(item)
                        continue
                    topic, key, payload = item
                    producer.send_encoded(BY_NAME[topic], key, payload)
                    producer.poll(0)
                    sent += 1
                    last_of[sc.name] = sent
            if producer.flush(30) > 0:
                raise ScenarioError("the broker did not acknowledge the scenario records within 30 s")
            acked = time.monotonic()
            for name in last_of:
                outcomes[name].last_sent = acked
            ingested(sent)
    finally:
        producer.close(0)
    return sent


def _policies(store: Any, deployment: str) -> list[dict[str, Any]]:
    return [p for r in store.artifact_revisions(deployment, "policy") if (p := store.artifact(deployment, "policy", r))]


def _stories(store: Any, scenario: Scenario) -> list[dict[str, Any]]:
    return [s for d in scenario.deployments for s in store.stories(deployment=d, limit=50)]


def watch(store: Any, outcomes: dict[str, Outcome], timeout_s: float, settle_s: float) -> None:
    """Poll until every scenario's expected stories are in the store (noting when), or timeout;
    then until nothing new was processed for `settle_s`; then judge each scenario."""
    deadline = time.monotonic() + timeout_s
    pending = {n for n, o in outcomes.items() if o.scenario.expected}
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            outcome = outcomes[name]
            stories = _stories(store, outcome.scenario)
            if all(any(_matches(s, e) for s in stories if not s.get("merged_into")) for e in outcome.scenario.expected):
                outcome.matched_at = time.monotonic()
                pending.discard(name)
        time.sleep(0.25)
    _settle(store, settle_s, deadline + settle_s)
    for outcome in outcomes.values():
        sc = outcome.scenario
        policies = [p for d in sc.deployments for p in _policies(store, d)]
        stories = _stories(store, sc)
        outcome.passed, outcome.got, outcome.problems = judge(sc, stories, policies)
        outcome.narratives = [s["narrative"] for s in stories if not s.get("merged_into")]


def _settle(store: Any, quiet_s: float, deadline: float) -> None:
    """Wait until no stage processed anything for `quiet_s` (the pipeline drained)."""

    def counts() -> tuple[int, ...]:
        return tuple(int(r["processed"]) for r in store.stage_health())

    last, since = counts(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = counts()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def run_eval(
    files: list[Path],
    config: Settings,
    *,
    timeout_s: float = 120,
    settle_s: float = 6,
    progress: Callable[[str], None] = print,
) -> list[Outcome]:
    """Replay `files` into the pipeline `config` points at (stages running) and judge them."""
    from runward.control.replay import store_barrier
    from runward.core.store import Store

    run = uuid.uuid4().hex[:6]
    now = datetime.now(timezone.utc)
    scenarios = [load(path, f"ev{run}-{i:02d}", run, now) for i, path in enumerate(files)]
    outcomes = {sc.name: Outcome(sc) for sc in scenarios}
    if len(outcomes) != len(scenarios):
        raise ScenarioError("two scenarios share a name; names must be unique")
    progress(f"Replaying {len(scenarios)} scenarios (run {run})")
    sent = publish(config, scenarios, store_barrier(config.db_url), outcomes)
    progress(f"  {sent} raw records published; waiting for the stories")
    watch(Store(config.db_url), outcomes, timeout_s, settle_s)
    return list(outcomes.values())
