"""Event time is evidence, not authority: ingest stamps its receipt time and clamps what is skewed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from runward.core.codec import RejectedRecord
from runward.core.contracts import Attribution, ConnectDetail, K8sAuditEvent, RawSensorEvent, SourceRef
from services.ingest import domain
from services.profiler.apd import ApdState, Policy, fold, window_status

RECEIVED = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
SKEW = timedelta(seconds=300)
SRC = SourceRef(topic="runward.raw.sensor", partition=0, offset=7)


def connect(ts: datetime, host: str = "api.openai.com", port: int = 443) -> Any:
    raw = RawSensorEvent(
        event_id=f"c-{ts.isoformat()}-{host}",
        ts=ts,
        attribution=Attribution(deployment="agents/bot", namespace="agents", pod="bot-1", service_account="bot"),
        detail=ConnectDetail(kind="connect", address="203.0.113.9", port=port, protocol="tcp", dns_name=host),
    )
    (event,) = domain.enrich_sensor({}, raw, SRC)
    return event


def test_time_within_the_skew_stands_and_carries_the_receipt_time() -> None:
    event = domain.trust_time(connect(RECEIVED - timedelta(seconds=299)), RECEIVED, SKEW)
    assert event.ts == RECEIVED - timedelta(seconds=299)
    assert event.received_at == RECEIVED and event.claimed_ts is None and "clock_skew" not in event.flags


@pytest.mark.parametrize(
    "claimed",
    [
        datetime(2020, 1, 1, tzinfo=timezone.utc),  # backdated under a finished baseline
        datetime(1, 1, 1, tzinfo=timezone.utc),  # would complete a new agent's window at once
        RECEIVED + timedelta(days=400),  # from the future
        RECEIVED - timedelta(seconds=301),
    ],
)
def test_time_outside_the_skew_is_replaced_by_the_receipt_time_and_flagged(claimed: datetime) -> None:
    event = domain.trust_time(connect(claimed), RECEIVED, SKEW)
    assert event.ts == RECEIVED == event.received_at
    assert event.claimed_ts == claimed
    assert event.flags.count("clock_skew") == 1


def test_time_without_a_zone_is_refused_with_the_reason() -> None:
    with pytest.raises(RejectedRecord, match=r"event time 2026-11-30T11:59:00 has no time zone"):
        domain.require_zone(datetime(2026, 11, 30, 11, 59))
    # Nor can an enriched event carry one (written straight to the topic it is dead-lettered at decode).
    with pytest.raises(ValidationError, match="has no time zone"):
        connect(datetime(2026, 11, 30, 11, 59))


def test_an_audit_event_without_a_zone_is_refused_before_it_is_parked() -> None:
    registry: dict[str, Any] = {}
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "a1",
        "stage": "ResponseComplete",
        "verb": "list",
        "user": {"username": "system:serviceaccount:agents:unknown"},
        "objectRef": {"resource": "secrets", "namespace": "agents"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-11-30T10:00:00",
    }
    with pytest.raises(RejectedRecord, match="has no time zone"):
        domain.enrich_audit(registry, K8sAuditEvent(event=event), SRC)
    assert registry == {}  # nothing parked that could never be released


def test_a_backdated_egress_after_the_window_is_a_deviation_not_baseline() -> None:
    policy = Policy(window_override_s=60, drift_correlation_s=3600)
    first = domain.trust_time(connect(RECEIVED), RECEIVED, SKEW)
    state = fold(None, first, policy).state
    later = RECEIVED + timedelta(seconds=61)
    forged = domain.trust_time(
        connect(datetime(2020, 1, 1, tzinfo=timezone.utc), "exfil.attacker.example", 4444), later, SKEW
    )
    result = fold(state, forged, policy)
    assert [s.behaviour.key for s in result.signals if s.behaviour] == ["egress:exfil.attacker.example:4444/tcp"]
    assert "egress:exfil.attacker.example:4444/tcp" not in result.state.behaviours.get("egress", [])


def test_a_year_one_first_event_starts_the_window_at_its_receipt() -> None:
    policy = Policy(window_override_s=60, drift_correlation_s=3600)
    first = domain.trust_time(connect(datetime(1, 1, 1, tzinfo=timezone.utc)), RECEIVED, SKEW)
    state: ApdState = fold(None, first, policy).state
    assert state.window_started_at == RECEIVED
    second = domain.trust_time(
        connect(RECEIVED + timedelta(seconds=1), "example.org"), RECEIVED + timedelta(seconds=1), SKEW
    )
    after = fold(state, second, policy).state
    assert window_status(after, second.ts, policy).value != "complete"
    assert "egress:example.org:443/tcp" in after.behaviours["egress"]
