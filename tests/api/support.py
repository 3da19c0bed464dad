"""Test data and helpers for the status API: real contract records for four agents, the
stage rows, and a TestClient that fails the test if any response ever contains a token."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import BaseModel

from runward.control.api.publisher import Publisher
from runward.core.contracts import (
    AiBom,
    ApdRevision,
    AttackStory,
    DeadLetter,
    EnforcementMode,
    PolicyBundle,
    Signal,
    SourceRef,
    StoryStatus,
    Surface,
    Technique,
    WindowStatus,
    utcnow,
)
from runward.core.store import Store
from runward.core.store.schema import StageHealth
from runward.core.topics import Topic

VIEWER_TOKEN = "view-3b1f6c0e9a7d42aa"
APPROVER_TOKEN = "approve-91d2c4f8e6ab17cd"
WRONG_TOKEN = "wrong-5e8a7b3c00ff9911"
SECRETS = (VIEWER_TOKEN, APPROVER_TOKEN, WRONG_TOKEN)
# The key the API signs promotion decisions with (the enforcer checks it).
PROMOTION_KEY = "promotion-key-for-api-tests-0123456789abcdef"
TOKEN_SPEC = f"alice:{VIEWER_TOKEN}:viewer,bob:{APPROVER_TOKEN}:approver"
DEAD_LETTER_PAYLOAD = "SECRET-PAYLOAD do not serve me"

VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
APPROVER = {"Authorization": f"Bearer {APPROVER_TOKEN}"}

# Fixed relative to now so that stage heartbeats are fresh or stale on purpose.
NOW = utcnow()
BUNDLE_AT = NOW - timedelta(hours=2)


def no_secret_in(response: httpx.Response) -> None:
    response.read()
    blob = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    for secret in SECRETS:
        assert secret not in blob, f"{response.request.method} {response.request.url} leaked a token"


# --- record builders ----------------------------------------------------------------------


def apd(deployment: str, revision: int, status: WindowStatus) -> ApdRevision:
    complete = status == WindowStatus.COMPLETE
    return ApdRevision(
        deployment=deployment,
        revision=revision,
        created_at=NOW - timedelta(hours=10 - revision),
        autonomy="low",
        window_started_at=NOW - timedelta(days=4),
        window_ends_at=NOW - timedelta(days=1) if complete else NOW + timedelta(days=2),
        window_status=status,
        behaviours={"exec": ["exec:/usr/bin/python3"], "egress": ["egress:api.openai.com:443/tcp"]},
        pods_seen=[f"{deployment.split('/')[1]}-7d9f-abcde"],
    )


def bundle(
    deployment: str, revision: int, mode: EnforcementMode, open_stories: list[str] | None = None
) -> PolicyBundle:
    name = deployment.split("/")[1]
    return PolicyBundle(
        deployment=deployment,
        revision=revision,
        created_at=BUNDLE_AT,
        apd_revision=1,
        mode=mode,
        egress_allowlist=["api.openai.com:443/tcp"],
        network_policy={
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{name}-egress", "namespace": deployment.split("/")[0]},
            "spec": {"podSelector": {"matchLabels": {"app": name}}, "policyTypes": ["Egress"]},
        },
        seccomp_profile={
            "defaultAction": "SCMP_ACT_LOG",
            "syscalls": [{"names": ["read", "write", "openat"], "action": "SCMP_ACT_ALLOW"}],
        },
        open_stories=open_stories or [],
    )


def story(story_id: str, deployment: str, status: StoryStatus, last_seen: datetime) -> AttackStory:
    technique = Technique(uid="AML.T0051", name="LLM Prompt Injection")
    signal = Signal(
        signal_id=f"{story_id}-s1",
        deployment=deployment,
        ts=last_seen,
        surface=Surface.INPUT,
        title="prompt injection pattern in user input",
        techniques=[technique],
        severity=4,
        source_event=f"{story_id}-e1",
    )
    return AttackStory(
        story_id=story_id,
        deployment=deployment,
        version=1,
        first_seen=last_seen - timedelta(minutes=5),
        last_seen=last_seen,
        status=status,
        severity=4,
        surfaces=[Surface.INPUT],
        techniques=[technique],
        narrative=["user input matched a prompt-injection rule"],
        signals=[signal],
        ocsf={"class_uid": 2004, "finding_info": {"uid": story_id, "title": "prompt injection"}},
    )


def put(store: Store, kind: str, record: BaseModel) -> None:
    body = record.model_dump(mode="json")
    store.put_artifact(body["deployment"], kind, body["revision"], NOW, body)


CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "version": 1,
    "components": [{"type": "machine-learning-model", "name": "gpt-4o-mini", "bom-ref": "model-1"}],
}
RECONCILIATION = {
    "deployment": "shop/retriever",
    "revision": 1,
    "granted": ["get pods", "list secrets", "get configmaps"],
    "used": ["get configmaps"],
    "unused": ["get pods", "list secrets"],
    "rendered": {
        "markdown": "# Reconciliation shop/retriever\n\n- unused: list secrets\n",
        "html": "<h1>Reconciliation shop/retriever</h1><p>unused: list secrets</p>",
    },
}


def seed(store: Store) -> None:
    """Four agents that exercise every branch of the agent views and of the gate."""
    for deployment, sa_name in [
        ("shop/retriever", "retriever-sa"),
        ("shop/planner", "planner-sa"),
        ("ops/helper", "helper-sa"),
        ("ops/fresh", None),
    ]:
        store.touch_agent(deployment, sa_name, NOW - timedelta(days=5))
        store.touch_agent(deployment, None, NOW - timedelta(minutes=1))

    # retriever: complete window, in audit, only a closed compromise and an expected drift -> may enforce
    put(store, "apd", apd("shop/retriever", 1, WindowStatus.LEARNING))
    put(store, "apd", apd("shop/retriever", 2, WindowStatus.COMPLETE))
    put(store, "aibom", AiBom(deployment="shop/retriever", revision=1, created_at=NOW, cyclonedx=CYCLONEDX))
    put(store, "policy", bundle("shop/retriever", 1, EnforcementMode.AUDIT))
    store.put_artifact("shop/retriever", "reconciliation", 1, NOW, RECONCILIATION)
    store.put_artifact(
        "shop/retriever",
        "bom_delta",
        1,
        NOW,
        {"deployment": "shop/retriever", "revision": 1, "undeclared": ["mcp:weather"]},
    )
    store.put_story(story("st-old", "shop/retriever", StoryStatus.POTENTIAL_COMPROMISE, BUNDLE_AT - timedelta(hours=1)))
    store.put_story(story("st-drift", "shop/retriever", StoryStatus.EXPECTED_DRIFT, NOW - timedelta(minutes=10)))

    # planner: still learning, no policy yet (observe)
    put(store, "apd", apd("shop/planner", 1, WindowStatus.LEARNING))

    # helper: complete window in observe, one live compromise and one the enforcer says holds the gate
    put(store, "apd", apd("ops/helper", 1, WindowStatus.COMPLETE))
    put(store, "policy", bundle("ops/helper", 1, EnforcementMode.OBSERVE, open_stories=["st-held"]))
    store.put_story(story("st-live", "ops/helper", StoryStatus.POTENTIAL_COMPROMISE, NOW - timedelta(minutes=5)))
    store.put_story(story("st-held", "ops/helper", StoryStatus.POTENTIAL_COMPROMISE, BUNDLE_AT - timedelta(minutes=90)))

    # stages: ingest fresh, profiler stale, the rest never started
    store.record_progress("ingest", processed=120, dead_letters=1, lag=3, last_record_at=NOW)
    store.record_progress("profiler", processed=80, dead_letters=0, lag=0, last_record_at=NOW - timedelta(minutes=6))
    with store.session() as s:
        s.execute(
            sa.update(StageHealth).where(StageHealth.stage == "profiler").values(updated_at=NOW - timedelta(minutes=5))
        )
    store.put_dead_letter(
        DeadLetter(
            stage="ingest",
            ts=NOW,
            source=SourceRef(topic="runward.raw.llm", partition=2, offset=41),
            reason="not valid JSON on runward.raw.llm: Expecting value",
            key="shop/retriever",
            payload=DEAD_LETTER_PAYLOAD,
        )
    )


@dataclass
class SpyPublisher:
    """The real Kafka publisher, plus a record of what the API asked it to publish."""

    inner: Publisher
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    def publish(self, topic: Topic, key: str, record: BaseModel) -> None:
        self.calls.append((topic.name, key, record))
        self.inner.publish(topic, key, record)

    def close(self) -> None:
        self.inner.close()


def make_client(app: Any) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    client.event_hooks["response"] = [no_secret_in]
    return client
