"""The whole pipeline as real processes: embedded broker, five Faust stages, the API.

A recorded scenario is replayed; the attack story must reach the SOC's topic (read with a
plain Kafka consumer) and the platform team's API. Bad records must be dead-lettered with
their reason while the stages keep running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runward.control.broker import free_port
from runward.control.replay import replay, store_barrier
from runward.control.supervisor import Supervisor
from runward.core.config import Settings
from runward.core.contracts import StoryStatus
from runward.core.kafka import RecordProducer
from runward.core.topics import ATTACK_STORIES, DEAD_LETTER, POLICIES, RAW_LLM, RAW_SENSOR
from tests.kafka_reading import read_values

pytestmark = pytest.mark.e2e
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "support_agent.jsonl"
ATTACKED_SURFACES = {"input", "tool", "identity", "process", "network"}
VIEWER, APPROVER = "viewer-token-for-e2e-0123456789", "approver-token-for-e2e-0123456789"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    home = tmp_path_factory.mktemp("runward")
    config = Settings(
        kafka=f"127.0.0.1:{free_port()}",
        home=home,
        api_port=free_port(),
        otlp_port=free_port(),
        api_tokens=f"soc:{VIEWER}:viewer,lead:{APPROVER}:approver",
        # The scenario is days of recorded time replayed in seconds: its event times must stand.
        max_clock_skew_s=30 * 24 * 3600,
    )
    sup = Supervisor(config, external_kafka=False)
    sup.start(with_sensor=False)
    try:
        yield sup
    finally:
        sup.stop()


def api(sup: Supervisor, path: str, token: str = VIEWER) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{sup.config.api_port}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_scenario_becomes_one_attack_story(pipeline: Supervisor) -> None:
    sent = replay(
        SCENARIO, pipeline.config.kafka, wait_ingested=store_barrier(pipeline.config.db_url), progress=lambda _: None
    )
    assert sent == 136

    # The story grows as signals join; wait for the version that spans every attacked surface.
    deadline, story = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        stories = read_values(pipeline.config.kafka, ATTACK_STORIES.name, 100, 3)
        compromised = [s for s in stories if s["status"] == StoryStatus.POTENTIAL_COMPROMISE]
        spanning = [s for s in compromised if set(s["surfaces"]) >= ATTACKED_SURFACES]
        if spanning:
            story = max(spanning, key=lambda s: s["version"])
            break
    assert story is not None, "no complete attack story reached runward.attack-stories"
    assert story["deployment"] == "agents/support-bot"
    assert set(story["surfaces"]) == ATTACKED_SURFACES
    uids = {t["uid"] for t in story["techniques"]}
    assert {"AML.T0051", "AML.T0053", "AML.T0086", "T1552.007"} <= uids
    assert story["ocsf"]["class_uid"] == 2004
    assert {a["technique"]["uid"] for a in story["ocsf"]["finding_info"]["attacks"]} == uids
    assert story["severity"] == 5
    # The injected prompt carried an API key: no stage may pass it on.
    assert "sk-proj-Zk3v9QmLr8TxW2aYpB7nCq4dHs6Ju1Ef" not in json.dumps(story)

    # The retriever's drift followed its Deployment update: tagged, not escalated.
    drift = read_values(pipeline.config.kafka, ATTACK_STORIES.name, 100, 3)
    retriever = [s for s in drift if s["deployment"] == "agents/retriever"]
    assert retriever and all(s["status"] == StoryStatus.EXPECTED_DRIFT for s in retriever)
    # ... learnt pending an approver: not in the baseline enforce-mode policies are built from.
    rag = api(pipeline, "/v1/agents/agents/retriever/apd").json()
    assert "egress:milvus.rag.svc.cluster.local:19530/tcp" in rag["pending"]["egress"]
    assert "egress:milvus.rag.svc.cluster.local:19530/tcp" not in rag["behaviours"]["egress"]

    # The platform team sees the same story and the agent's artifacts through the API.
    listed = api(pipeline, "/v1/attack-stories?deployment=agents/support-bot").json()
    assert any(s["story_id"] == story["story_id"] for s in listed)
    agent = api(pipeline, "/v1/agents/agents/support-bot")
    assert agent.status_code == 200
    apd = api(pipeline, "/v1/agents/agents/support-bot/apd").json()
    assert apd["window_status"] == "complete"
    assert "egress:paste.evil.example:443/tcp" not in apd["behaviours"]["egress"], "attack learnt as baseline"
    assert "egress:api.openai.com:443/tcp" in apd["behaviours"]["egress"]
    assert not any(a.startswith("203.0.113.50") for a in apd["behaviours"]["egress_ip"]), "attacker address learnt"
    assert "exec:/bin/sh" not in apd["behaviours"]["exec"] and not apd["pending"]
    assert sorted(apd["pods_seen"]) == ["support-bot-7d9f8c6b5-q7m4w", "support-bot-7d9f8c6b5-x2k9p"]

    policies = read_values(pipeline.config.kafka, POLICIES.name, 500, 3)
    latest = max((p for p in policies if p["deployment"] == "agents/support-bot"), key=lambda p: p["revision"])
    assert latest["egress_allowlist"] == ["api.openai.com:443/tcp", "crm-mcp.tools.svc.cluster.local:8080/tcp"]
    # Observe applies nothing: a core NetworkPolicy has no audit mode, only enforce emits one.
    assert latest["mode"] == "observe" and latest["network_policy"] is None and latest["calico_policy"] is None
    assert latest["seccomp_profile"]["defaultAction"] == "SCMP_ACT_LOG"
    assert story["story_id"] in latest["open_stories"]
    assert api(pipeline, "/v1/attack-stories", token="wrong").status_code == 401


def test_bad_records_are_dead_lettered_and_counted(pipeline: Supervisor) -> None:
    # Bad bytes on purpose: send_encoded passes them by the codec, as a foreign producer would.
    producer = RecordProducer(pipeline.config, "test-bad-records")
    valid_llm = {
        "event_id": "e-dlq",
        "ts": "2026-11-27T00:00:00Z",
        "operation": "chat",
        "attribution": {"deployment": "agents/dlq-probe"},
    }
    bad = [
        (RAW_SENSOR, b"{not json"),
        (RAW_LLM, json.dumps({**valid_llm, "schema_version": 99}).encode()),
        (
            RAW_SENSOR,
            json.dumps({"event_id": "x", "ts": "2026-11-27T00:00:00Z", "detail": {"kind": "teleport"}}).encode(),
        ),
    ]
    for topic, payload in bad:
        producer.send_encoded(topic, "probe", payload)
    producer.send_encoded(RAW_LLM, "agents/dlq-probe", json.dumps(valid_llm).encode())
    assert producer.close(10) == 0

    letters = read_values(pipeline.config.kafka, DEAD_LETTER.name, 3, 60)
    reasons = {(letter["source"]["topic"], letter["payload"][:9]): letter["reason"] for letter in letters}
    assert "not valid JSON" in reasons[(RAW_SENSOR.name, "{not json")]
    assert any("unknown schema_version 99" in r for r in reasons.values())
    assert any("does not match runward.raw.sensor contract" in r and "detail" in r for r in reasons.values())
    assert all(letter["stage"] == "ingest" and letter["source"]["offset"] >= 0 for letter in letters)

    # The stage kept running: the valid record after the bad ones was processed.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stages = {s["stage"]: s for s in api(pipeline, "/v1/stages").json()}
        if stages["ingest"]["dead_letters"] >= 3:
            break
        time.sleep(1)
    assert stages["ingest"]["dead_letters"] == 3
    names = [a["deployment"] for a in api(pipeline, "/v1/agents").json()]
    deadline = time.monotonic() + 30
    while "agents/dlq-probe" not in names and time.monotonic() < deadline:
        time.sleep(1)
        names = [a["deployment"] for a in api(pipeline, "/v1/agents").json()]
    assert "agents/dlq-probe" in names
    letters_api = api(pipeline, "/v1/dead-letters?stage=ingest").json()
    assert len(letters_api) == 3 and all("payload" not in letter for letter in letters_api)
