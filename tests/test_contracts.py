"""Every record that crosses a topic round-trips, carries its schema version, and is in the topic table."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import BaseModel, ValidationError

from runward.core import contracts as c
from runward.core.codec import RejectedRecord, decode, encode, encode_for
from runward.core.contracts.reconciliation import K8sReconciliation, ReconciliationReport, ServiceAccountRef
from runward.core.topics import ALL_TOPICS, APD, BY_NAME, ENRICHED, RAW_K8S, SIGNALS, WrongRecord

T = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SRC = c.SourceRef(topic="runward.raw.sensor", partition=1, offset=7)


def samples() -> list[tuple[str, BaseModel]]:
    signal = c.Signal(
        signal_id="s1",
        deployment="agents/a",
        ts=T,
        surface=c.Surface.TOOL,
        title="t",
        techniques=[c.Technique(uid="AML.T0053", name="AI Agent Tool Invocation")],
        severity=3,
        source_event="e1",
    )
    return [
        (
            "runward.raw.sensor",
            c.RawSensorEvent(
                event_id="e1",
                ts=T,
                detail=c.ExecDetail(binary="/bin/sh"),
                attribution=c.Attribution(deployment="agents/a"),
            ),
        ),
        (
            "runward.raw.sensor",
            c.RawSensorEvent(
                event_id="e2", ts=T, detail=c.ConnectDetail(kind="accept", family="ipv6", address="::1", port=8080)
            ),
        ),
        (
            "runward.raw.sensor",
            c.RawSensorEvent(event_id="e3", ts=T, detail=c.SyscallSetDetail(syscalls=["read", "openat"])),
        ),
        ("runward.raw.llm", c.RawLlmEvent(event_id="l1", ts=T, operation="chat", request_model="gpt-4o")),
        ("runward.raw.k8s", c.K8sObjectEvent(type="ADDED", object={"kind": "Pod", "metadata": {"name": "p"}})),
        ("runward.raw.k8s", c.K8sAuditEvent(event={"kind": "Event", "apiVersion": "audit.k8s.io/v1"})),
        (
            "runward.events.enriched",
            c.EnrichedEvent(
                event_id="e1",
                ts=T,
                deployment="agents/a",
                namespace="agents",
                surface=c.Surface.PROCESS,
                kind="exec",
                behaviour=c.Exec(binary="/bin/sh"),
                detail=c.ExecInfo(pid=7, comm="sh", binary="/bin/sh", argv=["sh", "-c", "id"]),
                source=SRC,
            ),
        ),
        (
            "runward.events.enriched",
            c.EnrichedEvent(
                event_id="e2",
                ts=T,
                deployment="agents/a",
                namespace="agents",
                surface=c.Surface.IDENTITY,
                behaviour=c.K8sApiCall(verb="list", group="core", resource="secrets", scope="agents"),
                detail=c.K8sApiInfo(verb="list", api_group="core", resource="secrets", namespace="agents", code=200),
                source=SRC,
            ),
        ),
        (
            "runward.apd",
            c.ApdRevision(
                deployment="agents/a",
                revision=1,
                created_at=T,
                autonomy="low",
                window_started_at=T,
                window_ends_at=T,
                window_status=c.WindowStatus.LEARNING,
            ),
        ),
        ("runward.signals", signal),
        (
            "runward.attack-stories",
            c.AttackStory(
                story_id="story-1",
                deployment="agents/a",
                version=1,
                first_seen=T,
                last_seen=T,
                status=c.StoryStatus.POTENTIAL_COMPROMISE,
                severity=3,
                surfaces=[c.Surface.TOOL],
                techniques=signal.techniques,
                narrative=["x"],
                signals=[signal],
                ocsf={"class_uid": 2004},
            ),
        ),
        ("runward.aibom", c.AiBom(deployment="agents/a", revision=1, created_at=T, cyclonedx={"specVersion": "1.6"})),
        ("runward.declared", c.DeclaredManifest(deployment="agents/a", submitted_at=T, requirements=["x==1"])),
        (
            "runward.aibom.delta",
            c.BomDelta(
                deployment="agents/a",
                revision=1,
                created_at=T,
                findings=[c.BomFinding(kind="undeclared_package", subject="requests", observed="2.32.3")],
            ),
        ),
        (
            "runward.reconciliation",
            ReconciliationReport(
                agent="agents/a",
                service_account=ServiceAccountRef(namespace="agents", name="a"),
                generated_at=T,
                kubernetes=K8sReconciliation(
                    username="system:serviceaccount:agents:a",
                    permissions=[],
                    observed=[],
                    outside_grants=[],
                    denied_attempts=[],
                    proposed_rbac=[],
                ),
            ),
        ),
        (
            "runward.policies",
            c.PolicyBundle(
                deployment="agents/a",
                revision=1,
                created_at=T,
                apd_revision=1,
                mode=c.EnforcementMode.OBSERVE,
                egress_allowlist=[],
                network_policy={},
                seccomp_profile={},
            ),
        ),
        (
            "runward.promotions",
            c.PromotionDecision(
                deployment="agents/a", mode=c.EnforcementMode.AUDIT, approver="lead", reason="window complete", ts=T
            ),
        ),
        (
            "runward.proofs",
            c.PolicyProof(
                deployment="agents/a",
                apd_revision=3,
                profile_sha256="0" * 64,
                passed=True,
                ran_at=T,
                runtime="runc 1.1.5",
                command=["/bin/agent"],
                exit_code=0,
            ),
        ),
        (
            "runward.audit-evidence",
            c.AuditEvidence(
                evidence_id="e1",
                deployment="agents/a",
                ts=T,
                source=c.EvidenceSource.SECCOMP,
                action="unshare",
                reason="not in the seccomp profile",
            ),
        ),
        ("runward.dead-letter", c.DeadLetter(stage="ingest", ts=T, source=SRC, reason="bad", payload="{")),
    ]


@pytest.mark.parametrize(("topic", "record"), samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_round_trip_through_the_topic_codec(topic: str, record: BaseModel) -> None:
    payload = encode(record)
    assert json.loads(payload)["schema_version"] == 1
    assert decode(BY_NAME[topic], payload) == record


def test_every_topic_is_covered_by_a_sample_and_keyed() -> None:
    assert {t for t, _ in samples()} == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        assert topic.producers and topic.consumers and topic.key
    agent_topics = [t for t in ALL_TOPICS if not t.name.startswith("runward.raw") and t.name != "runward.dead-letter"]
    assert all(t.key == "deployment id" for t in agent_topics)


def test_unknown_schema_version_is_rejected_with_advice() -> None:
    with pytest.raises(RejectedRecord, match="unknown schema_version 2 .*upgrade the consumer"):
        decode(BY_NAME["runward.raw.llm"], b'{"schema_version": 2, "event_id": "x"}')
    with pytest.raises(ValidationError, match="not supported"):
        c.Signal.model_validate({"schema_version": 3})


@pytest.mark.parametrize("bad", ["agents", "Agents/a", "agents/", "a/b/c", "agents/-x"])
def test_deployment_id_must_be_namespace_slash_name(bad: str) -> None:
    with pytest.raises(ValidationError, match="namespace/name"):
        c.Attribution(deployment=bad)


def test_contract_refuses_unknown_fields() -> None:
    with pytest.raises(RejectedRecord, match="Extra inputs are not permitted"):
        decode(
            BY_NAME["runward.raw.llm"],
            b'{"event_id":"x","ts":"2026-01-01T00:00:00Z","operation":"chat","prompt_raw":"hi"}',
        )


def _enriched_payload(**changes: object) -> dict[str, object]:
    record = {
        "schema_version": 1,
        "event_id": "e1",
        "ts": "2026-11-27T12:00:00Z",
        "deployment": "agents/a",
        "namespace": "agents",
        "surface": "network",
        "kind": "connect",
        "behaviour": "egress:api.openai.com:443/tcp",
        "category": "egress",
        "detail": {"address": "10.0.0.9", "port": 443, "protocol": "tcp", "dns_name": "api.openai.com"},
        "source": {"topic": "runward.raw.sensor", "partition": 0, "offset": 1},
    }
    return {**record, **changes}


def test_enriched_behaviour_is_typed_in_python_and_its_key_on_the_wire() -> None:
    # A schema-1 payload as ingest wrote it before details were typed (no `kind` inside detail).
    event = decode(ENRICHED, json.dumps(_enriched_payload()).encode())
    assert event.behaviour == c.Egress(host="api.openai.com", port=443, protocol="tcp")
    assert isinstance(event.detail, c.ConnectInfo) and event.detail.address == "10.0.0.9"
    wire = json.loads(encode(event))
    assert wire["behaviour"] == "egress:api.openai.com:443/tcp" and wire["detail"]["kind"] == "connect"
    assert decode(ENRICHED, encode(event)) == event


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"behaviour": "egress:api.openai.com/tcp"}, "behaviour key 'egress:api.openai.com/tcp' is not a valid egress"),
        ({"behaviour": "telnet:x"}, "behaviour key 'telnet:x' has no known kind"),
        ({"category": "dns"}, "belongs to APD category 'egress', not 'dns'"),
        ({"detail": {"kind": "dns", "name": "x"}}, "detail is a 'dns' detail but the event kind is 'connect'"),
        ({"detail": {"address": "10.0.0.9", "port": 443, "sha256": "ab"}}, "detail.connect.sha256: Extra inputs"),
        ({"kind": "exec"}, "detail.exec.binary: Field required"),
    ],
)
def test_enriched_events_that_break_the_types_are_rejected_with_the_reason(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(RejectedRecord, match=reason.replace("(", r"\(")):
        decode(ENRICHED, json.dumps(_enriched_payload(**changes)).encode())


def test_kind_and_category_follow_from_a_typed_detail_and_behaviour() -> None:
    event = c.EnrichedEvent(
        event_id="f",
        ts=T,
        deployment="agents/a",
        namespace="agents",
        surface=c.Surface.TOOL,
        behaviour=c.ToolCall(server="github", name="repos/create_issue"),
        detail=c.LlmCallInfo(kind="execute_tool", operation="execute_tool", tool_name="repos/create_issue"),
        source=SRC,
    )
    assert (event.kind, event.category) == ("execute_tool", "mcp_tools")


def test_a_topic_accepts_only_its_record_type_on_produce() -> None:
    signal = samples()[0][1]
    with pytest.raises(
        WrongRecord, match="cannot publish a RawSensorEvent on runward.apd: the topic carries ApdRevision"
    ):
        encode_for(APD, signal)  # type: ignore[arg-type]  # what mypy catches statically, checked at run time too
    audit = c.K8sAuditEvent(event={"kind": "Event"})
    assert json.loads(encode_for(RAW_K8S, audit))["source"] == "k8s_audit"
    assert RAW_K8S.record_types == (c.K8sObjectEvent, c.K8sAuditEvent)
    with pytest.raises(WrongRecord, match="the topic carries K8sObjectEvent | K8sAuditEvent"):
        RAW_K8S.check(signal)
    produced = dict(samples())["runward.signals"]
    assert SIGNALS.check(produced) is produced
