"""The bom stage's per-agent state machine: when AI-BOM and delta revisions are published."""

from __future__ import annotations

import pytest

from runward.core.codec import RejectedRecord
from runward.core.contracts import DeclaredManifest
from services.bom.cyclonedx_bom import declared_cyclonedx
from services.bom.declared import declared_bom
from services.bom.pipeline import AgentState, on_declared, on_event
from tests.bom.factories import SITE, T0, event, opened, tools_list


def declared(requirements: list[str]) -> DeclaredManifest:
    return DeclaredManifest(deployment="agents/support-bot", submitted_at=T0, requirements=requirements)


def imported(package: str, at: float) -> object:
    return opened(f"{SITE}/{package}/__pycache__/__init__.cpython-311.pyc", at=at)


def test_first_evidence_publishes_and_repeats_do_not() -> None:
    step = on_event(AgentState(), imported("httpx", 0))
    assert step.aibom is not None and step.aibom.revision == 1 and step.delta is None
    assert step.aibom.cyclonedx["metadata"]["lifecycles"] == [{"phase": "operations"}]
    again = on_event(step.state, opened(f"{SITE}/httpx/__pycache__/_api.cpython-311.pyc", at=5))
    assert not again.changed and again.aibom is None


def test_package_bursts_coalesce_and_ai_relevant_changes_publish_at_once() -> None:
    state = on_event(AgentState(), imported("httpx", 0)).state
    step = on_event(state, imported("anyio", 0.5))
    assert step.changed and step.aibom is None and step.state.pending  # kept, not yet published
    step = on_event(step.state, imported("sniffio", 1.0))
    assert step.aibom is None
    step = on_event(step.state, tools_list("time", ["get_current_time"], at=1.2))  # a tool: now
    assert step.aibom is not None and step.aibom.revision == 2 and not step.state.pending
    refs = {c["bom-ref"] for c in step.aibom.cyclonedx["components"]}
    assert {"pypi:anyio@unknown", "pypi:sniffio@unknown"} <= refs
    step = on_event(step.state, imported("idna", 1.5))
    assert step.aibom is None
    # Any later event of the agent publishes what is pending once the window has passed.
    step = on_event(step.state, event("syscall", {"syscall": "read"}, at=3.6))
    assert step.aibom is not None and step.aibom.revision == 3


def test_delta_follows_the_declaration_and_changes_only_when_findings_do() -> None:
    state = on_event(AgentState(), imported("httpx", 0)).state
    step = on_declared(state, declared(["httpx==0.28.1", "anyio==4.16.0"]))
    assert step.delta is not None and step.delta.revision == 1 and step.delta.aibom_revision == 1
    assert {f.kind for f in step.delta.findings} == {"declared_not_loaded"}
    assert step.delta.declared_bom is not None
    assert step.delta.declared_bom["metadata"]["lifecycles"] == [{"phase": "build"}]
    step = on_event(step.state, imported("requests", 5))
    assert step.aibom is not None and step.delta is not None and step.delta.revision == 2
    assert ("undeclared_package", "requests") in {(f.kind, f.subject) for f in step.delta.findings}
    step = on_event(step.state, tools_list("time", ["get_current_time"], at=6))
    assert step.aibom is not None and step.delta is None  # new evidence, same findings
    state = step.state
    assert AgentState.model_validate(state.model_dump(mode="json")) == state  # survives the changelog


def test_a_declaration_publishes_pending_evidence_first() -> None:
    state = on_event(AgentState(), imported("httpx", 0)).state
    state = on_event(state, imported("requests", 0.5)).state
    step = on_declared(state, declared(["httpx==0.28.1"]))
    assert step.aibom is not None and step.aibom.revision == 2
    assert step.delta is not None and ("undeclared_package", "requests") in {
        (f.kind, f.subject) for f in step.delta.findings
    }


def test_an_unreadable_declaration_is_dead_lettered_with_its_reason() -> None:
    with pytest.raises(RejectedRecord, match="not PEP 508"):
        on_declared(AgentState(), declared(["httpx ==> 1"]))


def test_each_delta_carries_the_declared_bom_of_the_declaration_it_compares_with() -> None:
    # The declared BOM is built once per declaration revision and reused by its later deltas:
    # equal to one built afresh, and never the previous declaration's.
    manifest = declared(["httpx==0.28.1"])
    state = on_declared(on_event(AgentState(), imported("httpx", 0)).state, manifest).state
    step = on_event(state, imported("requests", 5))
    assert step.delta is not None
    fresh = declared_cyclonedx(declared_bom(manifest), step.state.declared_revision, manifest.submitted_at)
    assert step.delta.declared_bom == fresh
    step = on_event(step.state, imported("anyio", 10))
    assert step.delta is not None and step.delta.declared_bom == fresh
    assert step.delta.declared_bom is not fresh
    step.delta.declared_bom["metadata"]["component"]["name"] = "changed by a consumer"
    step = on_event(step.state, imported("idna", 15))
    assert step.delta is not None and step.delta.declared_bom == fresh  # each delta has its own document
    newer = declared(["httpx==0.28.1", "idna==3.10"])
    step = on_declared(step.state, newer)
    assert step.delta is not None and step.delta.declared_bom is not None
    refs = {c["bom-ref"] for c in step.delta.declared_bom["components"]}
    assert "pypi:idna@3.10" in refs
    assert step.delta.declared_bom == declared_cyclonedx(
        declared_bom(newer), step.state.declared_revision, newer.submitted_at
    )
