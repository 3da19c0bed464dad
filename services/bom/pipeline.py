"""The bom stage's per-agent state machine, without Kafka: what an enriched event or a
declared manifest does to an agent's AI-BOM and delta.

`app.py` keeps `AgentState` in changelogged tables and publishes what `on_event` /
`on_declared` return.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from runward.core.codec import RejectedRecord
from runward.core.contracts import AiBom, BomDelta, DeclaredManifest, EnrichedEvent
from services.bom.cyclonedx_bom import declared_cyclonedx, runtime_bom
from services.bom.declared import DeclaredBom, DeclaredError, declared_bom
from services.bom.delta import compute_delta
from services.bom.evidence import RuntimeEvidence, fold

COALESCE_S = 2.0
"""Package and native-library evidence arrives in bursts (a pod start opens thousands of
files); building and strictly validating a CycloneDX document per import would fall behind,
so such changes become at most one revision per this much event time. The agent's next event
(the sensor reports syscall sets every second while it runs, and its exit) publishes the rest."""

URGENT = frozenset({"models", "model_files", "mcp_servers", "tools", "endpoints", "images"})
"""Evidence sections the SOC should see at once: what the agent talks to and with which model."""


class AgentState(BaseModel):
    evidence: RuntimeEvidence | None = None
    aibom_revision: int = 0
    pending: bool = Field(default=False, description="evidence changed since the last published revision")
    published_at: datetime | None = None
    declared: DeclaredManifest | None = None
    declared_revision: int = 0
    delta_revision: int = 0
    delta_digest: str | None = None


@dataclass
class Step:
    state: AgentState
    changed: bool = False
    aibom: AiBom | None = None
    delta: BomDelta | None = None


def on_event(state: AgentState, event: EnrichedEvent) -> Step:
    """Fold one event into the agent's state (updated in place: the caller owns it)."""
    evidence, changes = fold(state.evidence, event)
    if changes:
        urgent = state.evidence is None or bool(changes & URGENT)
        state.evidence, state.pending = evidence, True
    else:
        urgent = False
    if not state.pending:
        return Step(state)
    due = (
        urgent
        or event.kind == "exit"
        or state.published_at is None
        or (event.ts - state.published_at).total_seconds() >= COALESCE_S
    )
    if not due:
        return Step(state, changed=bool(changes))
    return _publish(state, event.deployment, event.ts)


def _publish(state: AgentState, deployment: str, ts: datetime) -> Step:
    evidence = state.evidence
    assert evidence is not None, "only evidence makes a revision pending"
    revision = state.aibom_revision + 1
    state = state.model_copy(update={"aibom_revision": revision, "pending": False, "published_at": ts})
    bom = AiBom(
        deployment=deployment,
        revision=revision,
        created_at=ts,
        lifecycle="operations",
        cyclonedx=runtime_bom(evidence, revision, ts),
    )
    state, delta = _delta(state, ts)
    return Step(state, changed=True, aibom=bom, delta=delta)


def on_declared(state: AgentState, manifest: DeclaredManifest) -> Step:
    try:
        declared_bom(manifest)
    except DeclaredError as exc:
        raise RejectedRecord(f"declared manifest of {manifest.deployment} cannot be read: {exc}") from None
    state = state.model_copy(update={"declared": manifest, "declared_revision": state.declared_revision + 1})
    if state.pending:  # compare the declaration with everything observed, published first
        return _publish(state, manifest.deployment, manifest.submitted_at)
    state, delta = _delta(state, manifest.submitted_at)
    return Step(state, changed=True, delta=delta)


def _delta(state: AgentState, ts: datetime) -> tuple[AgentState, BomDelta | None]:
    manifest = state.declared
    if manifest is None:
        return state, None
    declared = declared_bom(manifest)
    findings = compute_delta(declared, state.evidence)
    digest = hashlib.sha256(
        json.dumps([state.declared_revision, [f.model_dump() for f in findings]], sort_keys=True).encode()
    ).hexdigest()
    if digest == state.delta_digest:
        return state, None  # same findings against the same declaration: nothing new to say
    state = state.model_copy(update={"delta_revision": state.delta_revision + 1, "delta_digest": digest})
    delta = BomDelta(
        deployment=manifest.deployment,
        revision=state.delta_revision,
        created_at=ts,
        aibom_revision=state.aibom_revision or None,
        findings=findings,
        declared_bom=_declared_document(manifest, declared, state.declared_revision),
    )
    return state, delta


_DECLARED_DOCUMENTS_MAX = 256
_declared_documents: OrderedDict[bytes, str] = OrderedDict()
_declared_lock = threading.Lock()


def _declared_document(manifest: DeclaredManifest, declared: DeclaredBom, revision: int) -> dict[str, Any]:
    """The declared CycloneDX document of a declaration revision, built and validated once.

    Every change of the findings publishes a delta with the declared BOM, and that BOM changes
    only with the declaration: building and validating it again for each delta doubled the cost
    of a revision. Kept as JSON (a fresh document per delta), by the digest of the manifest and
    its revision, for the most recent declarations (the manifest is redacted before it is sent)."""
    key = hashlib.sha256(f"{revision}\0{manifest.model_dump_json()}".encode()).digest()
    with _declared_lock:
        text = _declared_documents.get(key)
        if text is not None:
            _declared_documents.move_to_end(key)
    if text is None:
        text = json.dumps(declared_cyclonedx(declared, revision, manifest.submitted_at))
        with _declared_lock:
            _declared_documents[key] = text
            while len(_declared_documents) > _DECLARED_DOCUMENTS_MAX:
                _declared_documents.popitem(last=False)
    document: dict[str, Any] = json.loads(text)
    return document
