"""The used side from the pipeline itself: every audit event on runward.raw.k8s so far."""

from __future__ import annotations

import logging
from typing import Any

from runward.core.config import Settings
from runward.core.contracts import K8sAuditEvent
from runward.core.kafka import DeliveryError, read_topic
from runward.core.topics import RAW_K8S

log = logging.getLogger(__name__)

IDLE_S = 2.0


def audit_events_from_kafka(kafka: Settings | str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Read raw.k8s from the start until it has been quiet for IDLE_S; return its audit events.

    Records the contract rejects are skipped, not dead-lettered again: ingest reads the same
    topic and dead-letters them once, with the reason; the report reads what ingest accepts.
    """
    try:
        read = read_topic(
            kafka,
            RAW_K8S,
            reader="reconcile",
            match=lambda r: isinstance(r.record, K8sAuditEvent),
            idle_s=IDLE_S,
            timeout_s=timeout_s,
            dead_letter=False,
        )
    except DeliveryError as exc:
        raise RuntimeError(str(exc)) from None
    if read.timed_out:
        raise RuntimeError(f"{RAW_K8S.name} kept growing for {timeout_s:.0f} s; read a file instead")
    if read.rejected:
        log.warning(
            "%d records on %s do not match its contract and are not in the report", len(read.rejected), RAW_K8S.name
        )
    return [r.record.event for r in read.records]
