"""The topic table: every topic, its key, its record, who writes it and who reads it.

Records that belong to an agent are keyed by its Deployment id (`namespace/name`) so
one agent's history stays in one partition and in order.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from runward.core.contracts import (
    AiBom,
    ApdRevision,
    AttackStory,
    AuditEvidence,
    BomDelta,
    DeadLetter,
    DeclaredManifest,
    EnrichedEvent,
    K8sAuditEvent,
    K8sObjectEvent,
    PolicyBundle,
    PolicyProof,
    PromotionDecision,
    RawK8sRecord,
    RawLlmEvent,
    RawSensorEvent,
    Signal,
)
from runward.core.contracts.reconciliation import ReconciliationReport

DAY_MS = 86_400_000

RecordT = TypeVar("RecordT", bound=BaseModel)


class WrongRecord(TypeError):
    """A producer handed a topic a record of another type: a bug in the producer, never published."""


@dataclass(frozen=True)
class Topic(Generic[RecordT]):
    """A topic and the record type on it: `decode` returns a `RecordT`, producers may only send one."""

    name: str
    key: str
    record: type[RecordT]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    # How long the cluster keeps it (deploy/kubernetes KafkaTopics are generated from these):
    # None = forever. A compacted topic keeps the latest record of each key for good.
    retention_ms: int | None = 7 * DAY_MS
    compacted: bool = False

    @property
    def adapter(self) -> TypeAdapter[RecordT]:
        return _adapter(self.record)

    @property
    def record_types(self) -> tuple[type[BaseModel], ...]:
        """The record classes the topic carries (more than one for a discriminated union)."""
        return _record_types(self.record)

    def check(self, record: object) -> RecordT:
        """The record, if it is this topic's type; WrongRecord naming both otherwise."""
        if isinstance(record, self.record_types):
            return record  # type: ignore[return-value]  # one of RecordT's classes, checked above
        expected = " | ".join(t.__name__ for t in self.record_types)
        raise WrongRecord(
            f"cannot publish a {type(record).__name__} on {self.name}: the topic carries {expected} "
            "(see runward/core/topics.py)"
        )


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}
_RECORD_TYPES: dict[int, tuple[type[BaseModel], ...]] = {}


def _adapter(record: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(id(record))
    if adapter is None:
        adapter = _ADAPTERS[id(record)] = TypeAdapter(record)
    return adapter


def _record_types(record: Any) -> tuple[type[BaseModel], ...]:
    found = _RECORD_TYPES.get(id(record))
    if found is None:
        # A plain record class, or Annotated[A | B, discriminator]: its members.
        inner = typing.get_args(record)[0] if typing.get_origin(record) is typing.Annotated else record
        members = typing.get_args(inner) or (inner,)
        found = _RECORD_TYPES[id(record)] = tuple(m for m in members if isinstance(m, type))
    return found


RAW_SENSOR = Topic(
    "runward.raw.sensor",
    "deployment id, else node:cgroup_id",
    RawSensorEvent,
    ("sensor", "runward replay"),
    ("ingest",),
    retention_ms=3 * DAY_MS,  # raw events are re-derivable only from the source; ingest reads them in seconds
)
RAW_LLM = Topic(
    "runward.raw.llm",
    "deployment id, else sender",
    RawLlmEvent,
    ("otlp receiver", "mcp gateway", "runward replay"),
    ("ingest",),
    retention_ms=3 * DAY_MS,
)
RAW_K8S: Topic[K8sObjectEvent | K8sAuditEvent] = Topic(
    "runward.raw.k8s",
    "namespace/name of the object, or audit ID",
    RawK8sRecord,  # type: ignore[arg-type]  # the discriminated union of the two, which TypeAdapter reads
    ("k8s watcher", "audit webhook", "runward replay"),
    ("ingest",),
    retention_ms=30 * DAY_MS,  # `runward reconcile` reads every audit event here: a month of usage
)
ENRICHED = Topic(
    "runward.events.enriched",
    "deployment id",
    EnrichedEvent,
    ("ingest", "profiler (flush punctuation)", "api (approver: baseline acceptance)"),
    ("bom", "profiler"),
    retention_ms=21 * DAY_MS,  # the longest observation window: an APD can be rebuilt by replaying it
)
APD = Topic(
    "runward.apd", "deployment id", ApdRevision, ("profiler",), ("enforcer", "api (store)"), retention_ms=90 * DAY_MS
)
SIGNALS = Topic("runward.signals", "deployment id", Signal, ("profiler", "enforcer"), ("correlator",))
ATTACK_STORIES = Topic(
    "runward.attack-stories",
    "deployment id",
    AttackStory,
    ("correlator", "api (approver: story lifecycle)"),
    ("SOC", "enforcer", "api (store)"),
    retention_ms=90 * DAY_MS,  # incident investigations reach back months
)
AIBOM = Topic("runward.aibom", "deployment id", AiBom, ("bom",), ("api (store)",))
DECLARED = Topic(
    "runward.declared",
    "deployment id",
    DeclaredManifest,
    ("runward declare (deployment pipeline)",),
    ("bom",),
    retention_ms=None,
    compacted=True,  # the latest declaration of each agent is what the AI-BOM delta compares with
)
BOM_DELTA = Topic("runward.aibom.delta", "deployment id", BomDelta, ("bom",), ("SOC", "api (store)"))
POLICIES = Topic(
    "runward.policies", "deployment id", PolicyBundle, ("enforcer",), ("GitOps / admission", "api (store)")
)
RECONCILIATION = Topic(
    "runward.reconciliation",
    "deployment id",
    ReconciliationReport,
    ("runward reconcile (profiler)",),
    ("deployment ticket / GitOps", "api (store)"),
    retention_ms=90 * DAY_MS,
)
PROMOTIONS = Topic(
    "runward.promotions",
    "deployment id",
    PromotionDecision,
    ("api",),
    ("enforcer",),
    retention_ms=None,
    compacted=True,  # an agent's current mode must survive any retention: the latest decision per agent
)
PROOFS = Topic(
    "runward.proofs",
    "deployment id",
    PolicyProof,
    ("api (approver: runward prove)",),
    ("enforcer",),
    retention_ms=None,
    compacted=True,  # the latest proof of each agent decides whether its enforce bundle may be emitted
)
AUDIT_EVIDENCE = Topic(
    "runward.audit-evidence",
    "deployment id",
    AuditEvidence,
    ("seccomp log collector", "mcp gateway", "runward run (nftables log)"),
    ("enforcer (audit soak)", "api (store)"),
    retention_ms=90 * DAY_MS,  # the audit soak and the go-live ticket look back over weeks
)
DEAD_LETTER = Topic(
    "runward.dead-letter",
    "stage name",
    DeadLetter,
    ("every stage",),
    ("operators", "api (store)"),
    retention_ms=30 * DAY_MS,
)

ALL_TOPICS: tuple[Topic[Any], ...] = (
    RAW_SENSOR,
    RAW_LLM,
    RAW_K8S,
    ENRICHED,
    APD,
    SIGNALS,
    ATTACK_STORIES,
    AIBOM,
    DECLARED,
    BOM_DELTA,
    RECONCILIATION,
    POLICIES,
    PROMOTIONS,
    PROOFS,
    AUDIT_EVIDENCE,
    DEAD_LETTER,
)
BY_NAME: dict[str, Topic[Any]] = {t.name: t for t in ALL_TOPICS}
