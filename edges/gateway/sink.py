"""Where the gateway's records go: runward.raw.llm (and audit mode's would-be refusals to
runward.audit-evidence), without ever blocking the agent's calls."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Protocol

from edges.intake.publish import RawPublisher
from runward.core.contracts import AuditEvidence, DeadLetter, RawLlmEvent
from runward.core.topics import AUDIT_EVIDENCE, DEAD_LETTER, RAW_LLM

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def emit(self, event: RawLlmEvent) -> None: ...
    def dead_letter(self, record: DeadLetter) -> None: ...
    def evidence(self, record: AuditEvidence) -> None: ...
    def close(self) -> int: ...


class KafkaSink:
    def __init__(self, bootstrap: str, client_id: str = "runward-mcp-gateway") -> None:
        self._publisher = RawPublisher(bootstrap, client_id)
        self.failed = 0

    def emit(self, event: RawLlmEvent) -> None:
        key = event.attribution.deployment or "mcp-gateway"
        self._publisher.send(RAW_LLM, key, event).add_done_callback(self._delivered)

    def dead_letter(self, record: DeadLetter) -> None:
        """What the gateway refused unread (fail closed) is kept, with the reason, for operators."""
        self._publisher.send(DEAD_LETTER, record.stage, record).add_done_callback(self._delivered)

    def evidence(self, record: AuditEvidence) -> None:
        self._publisher.send(AUDIT_EVIDENCE, record.deployment, record).add_done_callback(self._delivered)

    def _delivered(self, future: Future[None]) -> None:
        if future.exception() is not None:
            self.failed += 1
            log.warning("gateway record not delivered: %s", future.exception())

    def close(self) -> int:
        return self._publisher.close()


class ListSink:
    """In-process sink (tests, dry runs)."""

    def __init__(self) -> None:
        self.events: list[RawLlmEvent] = []
        self.dead_letters: list[DeadLetter] = []
        self.audit_evidence: list[AuditEvidence] = []

    def emit(self, event: RawLlmEvent) -> None:
        self.events.append(event)

    def dead_letter(self, record: DeadLetter) -> None:
        self.dead_letters.append(record)

    def evidence(self, record: AuditEvidence) -> None:
        self.audit_evidence.append(record)

    def close(self) -> int:
        return 0
