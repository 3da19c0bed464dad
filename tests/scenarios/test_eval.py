"""The scenario library through the real pipeline (CI): `runward eval scenarios/library` on the
session broker, every stage a process, every scenario side by side; each must meet its expected
outcome. The story records carry the headers a SIEM routes and de-duplicates on."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runward.control.broker import free_port
from runward.control.eval import EVAL_CLOCK_SKEW_S, Outcome, run_eval, scenario_files
from runward.control.supervisor import Supervisor
from runward.core.config import Settings
from runward.core.topics import ATTACK_STORIES
from tests.kafka_reading import read_messages

pytestmark = pytest.mark.e2e
LIBRARY = Path(__file__).resolve().parents[2] / "scenarios" / "library"


def test_the_committed_library_is_what_the_generator_writes() -> None:
    sys.path.insert(0, str(LIBRARY.parent))
    from make_library import render_all

    rendered = render_all()
    committed = {p.name: p.read_text() for p in LIBRARY.glob("*.jsonl")}
    assert committed == rendered, "scenarios/library is stale: run `python scenarios/make_library.py`"
    kinds = [f.read_text().split("\n", 1)[0] for f in LIBRARY.glob("*.jsonl")]
    assert sum('"kind": "attack"' in k for k in kinds) >= 10 and sum('"kind": "benign"' in k for k in kinds) >= 10
    for surface in ("input", "tool", "identity", "multi_agent"):
        assert any(f'"{surface}"' in k for k in kinds), surface


@pytest.fixture(scope="module")
def outcomes(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Outcome]]:
    config = Settings(
        kafka=kafka_bootstrap,
        home=tmp_path_factory.mktemp("eval"),
        api_port=free_port(),
        otlp_port=free_port(),
        max_clock_skew_s=EVAL_CLOCK_SKEW_S,
    )
    sup = Supervisor(config, external_kafka=True)
    sup.start(with_sensor=False)
    try:
        yield run_eval(scenario_files([LIBRARY]), config, timeout_s=120, progress=lambda _: None)
    finally:
        sup.stop()


def test_every_scenario_meets_its_expected_outcome(outcomes: list[Outcome]) -> None:
    failed = {o.scenario.name: o.problems for o in outcomes if not o.passed}
    assert not failed, failed
    assert len(outcomes) == len(list(LIBRARY.glob("*.jsonl")))
    attacks = [o for o in outcomes if o.scenario.kind == "attack"]
    assert all(o.latency_s is not None and o.latency_s >= 0 for o in attacks)


def test_the_hand_off_story_spans_both_deployments(outcomes: list[Outcome]) -> None:
    [handoff] = [o for o in outcomes if o.scenario.name == "attack-cross-deployment-handoff"]
    assert len(handoff.got) == 1 and "spans planner" in handoff.got[0] and handoff.got[0].startswith("executor:")


def test_story_records_carry_schema_id_and_version_headers(kafka_bootstrap: str, outcomes: list[Outcome]) -> None:
    [scale] = [o for o in outcomes if o.scenario.name == "attack-hijack-after-scale"]
    namespace = scale.scenario.namespace
    messages = read_messages(
        kafka_bootstrap, ATTACK_STORIES.name, 1, lambda m: m.record.deployment.startswith(f"{namespace}/"), timeout=30
    )
    assert messages, "no story of the scenario on runward.attack-stories"
    story, headers = messages[-1].record, messages[-1].headers
    assert headers["schema"] == "runward.attack-story/v1"
    assert headers["ocsf"].endswith("/detection_finding/2004")
    assert headers["story_id"] == story.story_id and headers["version"] == str(story.version)
    assert headers["deployment"] == story.deployment
