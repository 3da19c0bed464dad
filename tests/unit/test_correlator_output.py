"""The correlator stage publishes and stores the same attack stories however its work is arranged.

A fixed, varied sequence of signals (several agents, growing, merging and restarting stories,
redeliveries, late arrivals, large signals, more than MAX_BEHAVIOURS behaviours) goes through the
real stage (`services.correlator.app.build`: its handler, `Stage._handle_batch`, codec and SQLite
store; dict tables and recording topics in place of Faust's), in batches. What it publishes and
stores is checked two ways:

- against a straightforward reference: every signal linked and rendered in turn
  (`story.link`), the newest version per story of each batch published in record order;
- against digests recorded from the correlator before its CPU work was cut (issue 14), so a
  change to the shared story logic that the reference would follow is caught too.

A deliberate change to what a story says re-records the digests with RUNWARD_RECORD_STORIES=1
(and says why in its commit).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runward.core import stage as stage_module
from runward.core.codec import encode_for
from runward.core.config import Settings
from runward.core.contracts import AttackStory, Signal, Surface, Technique
from runward.core.store import Store, upgrade
from runward.core.topics import ATTACK_STORIES, SIGNALS
from services.correlator import app as correlator_app
from services.correlator.story import StoryBook, kafka_headers, link

RECORDED = Path(__file__).resolve().parents[1] / "data" / "correlator" / "stories.json"
T0 = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
GAP = timedelta(minutes=30)
CLUSTER = "prod-eu-1"
BATCH = 40
DEPLOYMENTS = ["agents/alpha", "agents/beta", "agents/gamma"]
TECHNIQUES = [("AML.T0051", "LLM Prompt Injection"), ("AML.T0053", "LLM Plugin Compromise"), ("T1071", "C2"), None]


def signals(count: int = 2000, seed: int = 14) -> list[Signal]:
    """Signals as they arrive: mostly close in time per agent, with quiet gaps, entity links
    hours apart, late arrivals, redeliveries and a few large ones."""
    rng = random.Random(seed)
    clock = {d: T0 for d in DEPLOYMENTS}
    sent: list[Signal] = []
    for i in range(count):
        deployment = rng.choice([DEPLOYMENTS[0], *DEPLOYMENTS])  # alpha is the noisiest
        roll = rng.random()
        if sent and roll < 0.03:
            sent.append(rng.choice(sent[-200:]))  # redelivery
            continue
        step = timedelta(seconds=rng.randint(1, 90))
        if roll < 0.06:
            step = timedelta(minutes=rng.choice([45, 100, 200]))  # linked through a shared pod only
        elif roll < 0.08 and deployment != DEPLOYMENTS[0]:
            step = timedelta(hours=9)  # past every link: a new story (alpha's one story grows on)
        clock[deployment] += step
        at = clock[deployment]
        if rng.random() < 0.04:
            at -= timedelta(minutes=rng.randint(20, 300))  # late: may bridge two stories
        surface = rng.choice(list(Surface))
        tech = rng.choice(TECHNIQUES)
        # alpha's behaviours are all new (past MAX_BEHAVIOURS); the others' repeat.
        n = i if deployment == "agents/alpha" else rng.randint(0, 30)
        behaviour = rng.choice([f"exec:/usr/bin/tool-{n}", f"dns:host-{n}.example", f"egress:10.1.0.{n % 250}:443/tcp"])
        evidence: dict[str, Any] = {"pod": f"{deployment.split('/')[1]}-{rng.randint(0, 3)}"}
        if rng.random() < 0.3:
            evidence["service_account"] = rng.choice(["default", "bot"])
        if rng.random() < 0.3:
            evidence["trace_id"] = f"trace-{rng.randint(0, 50)}"
        if rng.random() < 0.3:
            evidence["detail"] = rng.choice(
                [
                    {"dns_name": f"exfil-{rng.randint(0, 5)}.example"},
                    {"address": f"203.0.113.{rng.randint(1, 20)}"},
                    {"tool_call_id": f"call-{rng.randint(0, 40)}"},
                ]
            )
        if surface is Surface.MULTI_AGENT:
            evidence["caller_agent"] = rng.choice([d for d in DEPLOYMENTS if d != deployment])
        size = rng.random()
        if 1000 <= i < 1060 or size < 0.03:
            evidence["blob"] = "x" * 15000  # a run of them fills KEPT_BYTES before KEPT_SIGNALS
        elif size < 0.035:
            evidence["blob"] = "y" * 40000  # over RENDER_WITH_SIGNAL_OVER: rendered with its signal
        sent.append(
            Signal(
                signal_id=f"sig-{i}",
                deployment=deployment,
                ts=at,
                surface=surface,
                title=f"{surface.value} deviation {i}",
                behaviour=None if surface is Surface.INPUT and rng.random() < 0.5 else behaviour,
                techniques=[Technique(uid=tech[0], name=tech[1])] if tech else [],
                severity=rng.randint(1, 5),
                deployment_correlated=rng.random() < 0.15,
                evidence=evidence,
                source_event=f"event-{i}",
            )
        )
    return sent


@dataclass(frozen=True)
class _Event:
    """What the harness reads of a Faust event: its message's topic, partition, offset, key and value."""

    message: SimpleNamespace


Published = tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]


class _Topic:
    def __init__(self, name: str, sent: list[tuple[str, Published]]) -> None:
        self.name, self.sent = name, sent

    async def send(self, key: bytes, value: bytes, headers: Any = None) -> asyncio.Future[None]:
        self.sent.append((self.name, (key, value, tuple(headers or ()))))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def run_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: list[list[Signal]]
) -> tuple[list[Published], Store, int]:
    """The real correlator stage fed `batches`; (published on attack-stories, store, dead letters)."""
    db = f"sqlite:///{tmp_path / 'runward.db'}"
    upgrade(db)
    captured: dict[str, Any] = {}
    monkeypatch.setattr(stage_module.Stage, "run", lambda self, handler: captured.update(handler=handler))
    monkeypatch.setattr(stage_module.Stage, "table", lambda self, name: {})
    stage = correlator_app.build(
        Settings(home=tmp_path, db=db, story_gap_s=int(GAP.total_seconds()), cluster_name=CLUSTER)
    )
    sent: list[tuple[str, Published]] = []
    stage._topics = {name: _Topic(name, sent) for name in stage._topics}
    stage._track_lag = lambda message: None
    offset = 0

    async def feed() -> None:
        nonlocal offset
        for records in batches:
            events = []
            for signal in records:
                value = encode_for(SIGNALS, signal)
                message = SimpleNamespace(
                    topic=SIGNALS.name,
                    partition=0,
                    tp=(SIGNALS.name, 0),
                    offset=offset,
                    key=signal.deployment.encode(),
                    value=value,
                )
                events.append(_Event(message))
                offset += 1
            await stage._handle_batch(captured["handler"], events)

    asyncio.run(feed())
    stories = [p for topic, p in sent if topic == ATTACK_STORIES.name]
    return stories, Store(db), stage._counters.dead_letters


def reference(batches: list[list[Signal]]) -> tuple[list[Published], dict[str, AttackStory]]:
    """Each signal linked and rendered in turn; per batch the last version of each story, in record order."""
    books: dict[str, StoryBook | None] = {}
    published: list[Published] = []
    newest: dict[str, AttackStory] = {}
    for records in batches:
        outputs: list[AttackStory] = []
        for signal in records:
            book, stories = link(books.get(signal.deployment), signal, GAP, CLUSTER)
            books[signal.deployment] = book
            outputs.extend(stories)
        last = {story.story_id: n for n, story in enumerate(outputs)}
        for n, story in enumerate(outputs):
            if last[story.story_id] != n:
                continue
            headers = tuple((name, value.encode()) for name, value in kafka_headers(story))
            published.append((story.deployment.encode(), encode_for(ATTACK_STORIES, story), headers))
            if story.story_id not in newest or story.version >= newest[story.story_id].version:
                newest[story.story_id] = story
    return published, newest


def _digest(record: Published) -> str:
    key, value, headers = record
    return hashlib.sha256(
        json.dumps([key.decode(), value.decode(), [[n, v.decode()] for n, v in headers]]).encode()
    ).hexdigest()


def test_the_stage_publishes_and_stores_what_linking_each_signal_in_turn_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequence = signals()
    batches = [sequence[i : i + BATCH] for i in range(0, len(sequence), BATCH)]
    published, store, dead_letters = run_stage(tmp_path, monkeypatch, batches)
    expected, newest = reference(batches)
    assert dead_letters == 0
    assert len(published) == len(expected)
    for n, (got, want) in enumerate(zip(published, expected, strict=True)):
        assert got == want, f"published record {n} differs from the reference"
    for story_id, story in newest.items():
        assert store.story(story_id) == story.model_dump(mode="json"), story_id

    # The sequence exercises what it claims: merged, long, large and redelivered stories.
    told = [json.loads(value) for _, value, _ in published]
    assert any(s.get("merged_into") for s in told)
    assert max(s["signal_count"] for s in told) > 100 and any(s["behaviours_truncated"] for s in told)
    assert any(len(s["signals"]) < 20 and s["signal_count"] > 20 for s in told)  # KEPT_BYTES bound
    assert len({s["story_id"] for s in told}) > 10

    digests = [_digest(p) for p in published]
    stored = {
        story_id: hashlib.sha256(json.dumps(store.story(story_id), sort_keys=True).encode()).hexdigest()
        for story_id in sorted(newest)
    }
    if os.environ.get("RUNWARD_RECORD_STORIES"):
        RECORDED.parent.mkdir(parents=True, exist_ok=True)
        RECORDED.write_text(json.dumps({"published": digests, "stored": stored}, indent=1) + "\n")
    recorded = json.loads(RECORDED.read_text())
    assert len(digests) == len(recorded["published"])
    for n, (got_digest, want_digest) in enumerate(zip(digests, recorded["published"], strict=True)):
        assert got_digest == want_digest, f"published record {n} ({json.loads(published[n][1])['story_id']}) changed"
    assert stored == recorded["stored"]


def test_a_signal_the_story_cannot_tell_is_dead_lettered_and_leaves_no_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its caller is not a Deployment id, so no story with it is a valid record. Told at once or
    # later in the batch, it must fail with its own record, before the next signal changes state.
    def signal(sid: str, seconds: int, **evidence: object) -> Signal:
        return Signal(
            signal_id=sid,
            deployment="agents/alpha",
            ts=T0 + timedelta(seconds=seconds),
            surface=Surface.MULTI_AGENT if evidence else Surface.TOOL,
            title=f"signal {sid}",
            severity=3,
            evidence=evidence,
            source_event=sid,
        )

    batch = [signal("a", 0), signal("bad", 1, caller_agent="not a deployment"), signal("b", 2)]
    published, store, dead_letters = run_stage(tmp_path, monkeypatch, [batch])
    assert dead_letters == 1
    [story] = [json.loads(value) for _, value, _ in published]
    assert story["version"] == 2 and [s["signal_id"] for s in story["signals"]] == ["a", "b"]
    assert story["related_deployments"] == [] and store.story(story["story_id"]) == story
