"""Every AI-BOM Runward emits is CycloneDX 1.6 that the library's strict validator accepts."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from runward.core.contracts import DeclaredManifest, LlmCall, ToolCall, utcnow
from services.bom import cyclonedx_bom
from services.bom.cyclonedx_bom import InvalidBom, declared_cyclonedx, runtime_bom, validate
from services.bom.declared import declared_bom, load_deployment_yaml, requirements_from_text
from services.bom.evidence import RuntimeEvidence, fold
from services.bom.pipeline import AgentState, on_event
from tests.bom.factories import SITE, chat, connected, event, initialize, opened, tool_call, tools_list

DATA = Path(__file__).resolve().parents[1] / "data" / "bom"
HF = "/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B/snapshots/060db6499f32faf8b98477b0a26969ef7d8b9987"


def strict_errors(document: dict) -> object:  # type: ignore[type-arg]
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))


def full_evidence():  # type: ignore[no-untyped-def]
    evidence = None
    for e in [
        opened(f"{SITE}/httpx/__pycache__/__init__.cpython-311.pyc"),
        opened(f"{SITE}/httpx-0.28.1.dist-info/METADATA"),
        opened(f"{SITE}/google/protobuf/__pycache__/__init__.cpython-311.pyc"),
        opened("/usr/lib/x86_64-linux-gnu/libssl.so.3"),
        opened(f"{HF}/model.safetensors"),
        opened("/models/llama.gguf"),
        chat("openai", "gpt-4o", "gpt-4o-2024-08-06"),
        initialize("time", at=1),
        tools_list("time", ["get_current_time"], at=1),
        tools_list("time", ["get_current_time", "delete_records"], at=90),
        tool_call("time", "get_current_time"),
        connected("api.openai.com", "162.159.140.245"),
        connected(None, "2001:db8::1", port=8443),
    ]:
        evidence, _ = fold(evidence, e)
    return evidence


def test_runtime_bom_validates_and_says_what_was_loaded() -> None:
    doc = runtime_bom(full_evidence(), revision=3)
    assert strict_errors(doc) is None
    assert doc["specVersion"] == "1.6" and doc["version"] == 3
    assert doc["metadata"]["lifecycles"] == [{"phase": "operations"}]
    components = {c["bom-ref"]: c for c in doc["components"]}
    httpx = components["pypi:httpx@0.28.1"]
    assert httpx["purl"] == "pkg:pypi/httpx@0.28.1"
    methods = [m for i in httpx["evidence"]["identity"] for m in i["methods"]]
    assert {m["technique"] for m in methods} == {"instrumentation"}
    assert {o["location"] for o in httpx["evidence"]["occurrences"]} >= {f"{SITE}/httpx"}
    model = components["model:openai/gpt-4o"]
    assert model["type"] == "machine-learning-model" and model["name"] == "gpt-4o-2024-08-06"
    assert model["modelCard"]["modelParameters"]["task"] == "text-generation"
    gguf = components["model-file:/models/llama.gguf"]
    assert gguf["type"] == "machine-learning-model"
    props = {p["name"]: p["value"] for p in gguf["properties"]}
    assert props == {"runward:model:format": "gguf", "runward:model:path": "/models/llama.gguf"}
    # The sensor sees an open, not the bytes: a digest would be invented.
    assert "hashes" not in gguf and "hashes" not in components[f"model-file:{HF}/model.safetensors"]
    services = {s["bom-ref"]: s for s in doc["services"]}
    tools = {t["name"]: t for t in services["mcp-server:time"]["services"]}
    late = {p["name"]: p["value"] for p in tools["delete_records"]["properties"]}
    assert late["runward:mcp:registered"] == "after-startup"
    assert services["endpoint:api.openai.com:443/tcp"]["endpoints"] == ["https://api.openai.com"]
    ipv6 = services["endpoint:2001:db8::1:8443/tcp"]
    assert "endpoints" not in ipv6
    assert {"name": "runward:endpoint:address", "value": "2001:db8::1"} in ipv6["properties"]


def test_revisions_of_one_agent_share_a_serial() -> None:
    evidence = full_evidence()
    one, two = runtime_bom(evidence, revision=1), runtime_bom(evidence, revision=2)
    assert one["serialNumber"] == two["serialNumber"] and one["version"] + 1 == two["version"]


def test_declared_bom_validates_with_lifecycle_build() -> None:
    manifest = DeclaredManifest(
        deployment="agents/support-bot",
        submitted_at=utcnow(),
        deployment_manifest=load_deployment_yaml((DATA / "deployment.yaml").read_text()),
        requirements=requirements_from_text("requirements.txt", (DATA / "requirements.txt").read_text()),
        mcp_config=json.loads((DATA / "mcp.json").read_text()),
    )
    doc = declared_cyclonedx(declared_bom(manifest))
    assert strict_errors(doc) is None
    assert doc["metadata"]["lifecycles"] == [{"phase": "build"}]
    refs = {c["bom-ref"] for c in doc["components"]}
    assert {
        "pypi:httpx@0.28.1",
        "pypi:openai@unpinned",
        "model:openai/gpt-4o-2024-08-06",
        "image:ghcr.io/example/support-bot:1.4.2",
    } <= refs
    github = next(s for s in doc["services"] if s["name"] == "github")
    assert [t["name"] for t in github["services"]] == ["get_issue", "list_issues"]


def test_an_invalid_document_is_refused() -> None:
    doc = runtime_bom(full_evidence())
    doc["components"][0]["modelCard"] = {"notAField": True}
    with pytest.raises(InvalidBom, match="does not validate"):
        validate(doc, "agents/support-bot")


def test_model_endpoints_are_services_and_function_tools_are_not_mcp_servers() -> None:
    evidence = None
    for e in [
        event(
            "chat",
            {"operation": "chat", "provider": "openai", "request_model": "gpt-4o", "endpoint": "llm-gw.internal:8080"},
            behaviour=LlmCall(provider="openai", model="gpt-4o"),
        ),
        event(
            "chat",
            {"operation": "chat", "provider": "openai", "request_model": "gpt-4o", "endpoint": "api.openai.com"},
            behaviour=LlmCall(provider="openai", model="gpt-4o"),
        ),
        event(
            "execute_tool",
            {"operation": "execute_tool", "tool_name": "summarise", "tools": []},
            behaviour=ToolCall(server="local", name="summarise"),
        ),
        tool_call("db", "run_query"),
    ]:
        evidence, _ = fold(evidence, e)
    doc = runtime_bom(evidence, revision=1)
    assert strict_errors(doc) is None
    services = {s["bom-ref"]: s for s in doc["services"]}
    gateway = {p["name"]: p["value"] for p in services["endpoint:llm-gw.internal:8080/tcp"]["properties"]}
    assert gateway == {"runward:endpoint:kind": "model-endpoint", "runward:model:provider": "openai"}
    public = {p["name"]: p["value"] for p in services["endpoint:api.openai.com:443/tcp"]["properties"]}
    assert public["runward:endpoint:kind"] == "model-provider"
    assert "mcp-server:local" not in services and "mcp-server:db" in services
    assert services["function-tool:summarise"]["name"] == "summarise"


def _refused(document: dict) -> bool:  # type: ignore[type-arg]
    try:
        validate(document, "agents/support-bot")
    except InvalidBom:
        return True
    return False


def _service(document: dict, ref: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in document["services"] if s["bom-ref"] == ref)  # type: ignore[no-any-return]


def test_a_change_inside_a_component_validated_before_is_checked_again() -> None:
    # Components and services found valid are remembered by digest; an edit deep inside one,
    # or a copy of a remembered one, must still be refused as the library's validator refuses it.
    valid = runtime_bom(full_evidence(), revision=1)
    assert not _refused(valid) and not _refused(copy.deepcopy(valid))  # remembered now
    mutations = {
        "an unknown field in a component's evidence": lambda d: d["components"][0]["evidence"]["identity"][0].update(
            notAField=True
        ),
        "a confidence out of range": lambda d: d["components"][0]["evidence"]["identity"][0].update(confidence=2),
        "a property without a name": lambda d: d["services"][0]["properties"][0].pop("name"),
        "a nested tool of the wrong type": lambda d: _service(d, "mcp-server:time")["services"].append("get_time"),
        "a component twice": lambda d: d["components"].append(copy.deepcopy(d["components"][0])),
        "a service twice": lambda d: d["services"].insert(0, copy.deepcopy(d["services"][-1])),
        "a dependency twice": lambda d: d["dependencies"].append(copy.deepcopy(d["dependencies"][1])),
        "a dependency without its ref": lambda d: d["dependencies"][0].pop("ref"),
    }
    for what, mutate in mutations.items():
        document = copy.deepcopy(valid)
        mutate(document)
        assert strict_errors(document) is not None, what  # the library refuses it too
        assert _refused(document), what
        assert _refused(document), what  # and again: a refusal is never remembered
    assert not _refused(valid)


def test_items_alike_but_for_a_nested_value_are_not_duplicates() -> None:
    # Same keys and string values, a different confidence: unique to the schema, and kept.
    valid = runtime_bom(full_evidence(), revision=1)
    twin = copy.deepcopy(valid["components"][0])
    twin["evidence"]["identity"][0]["confidence"] = 0.5
    valid["components"].append(twin)
    assert strict_errors(valid) is None
    assert not _refused(valid)
    twin["evidence"]["identity"][0]["confidence"] = valid["components"][0]["evidence"]["identity"][0]["confidence"]
    assert strict_errors(valid) is not None and _refused(valid)


def test_remembered_subtrees_do_not_outlive_a_change_of_content() -> None:
    # Same bom-ref, same shape, one value changed: a different digest, checked in full.
    valid = runtime_bom(full_evidence(), revision=1)
    assert not _refused(valid)
    document = copy.deepcopy(valid)
    document["components"][0]["type"] = "not-a-component-type"
    assert strict_errors(document) is not None
    assert _refused(document)


def _from_scratch(evidence: RuntimeEvidence, revision: int, created_at: datetime) -> dict:  # type: ignore[type-arg]
    """The agent's runtime BOM built with no part of an earlier revision to reuse."""
    cyclonedx_bom._Parts.forget(evidence.deployment)
    return runtime_bom(evidence, revision, created_at)


def _occurrences_sorted(document: dict) -> dict:  # type: ignore[type-arg]
    """`document` with each component's occurrences by location. The library's order of them is
    arbitrary: an Occurrence without a bom-ref is never less than another, so two builds of the
    same evidence may list them differently (its set orders them by object id)."""
    document = copy.deepcopy(document)
    for component in document.get("components", []):
        occurrences = component.get("evidence", {}).get("occurrences")
        if occurrences:
            occurrences.sort(key=lambda o: o["location"])
    return document


def test_each_revision_built_from_the_last_ones_parts_equals_one_built_from_scratch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every kind of part, and changes inside parts an earlier revision already had: an endpoint's
    # new address, a package's new import and its dist-info version, a server's new tool and its
    # initialize, a model served under a new name, a second pod.
    built: list[str] = []
    builder = cyclonedx_bom._endpoint_service

    def counted(host: str, *args: Any, **kwargs: Any) -> Any:
        built.append(host)
        return builder(host, *args, **kwargs)

    monkeypatch.setattr(cyclonedx_bom, "_endpoint_service", counted)
    events = [
        opened(f"{SITE}/httpx/__pycache__/__init__.cpython-311.pyc"),
        connected("api.openai.com", "162.159.140.245"),
        chat("openai", "gpt-4o", "gpt-4o-2024-08-06", at=1),
        opened("/usr/lib/x86_64-linux-gnu/libssl.so.3", at=2),
        connected("api.openai.com", "162.159.140.246", at=3),
        opened(f"{SITE}/httpx/_transports/__pycache__/default.cpython-311.pyc", at=4),
        opened(f"{SITE}/httpx-0.28.1.dist-info/METADATA", at=5),
        tools_list("time", ["get_current_time"], at=6),
        initialize("time", at=7),
        chat("openai", "gpt-4o", "gpt-4o-2024-11-20", at=8),
        tools_list("time", ["get_current_time", "convert_time"], at=9),
        opened(f"{HF}/model.safetensors", at=10),
        tool_call("local", "summarise", at=11),
        connected(None, "2001:db8::1", port=8443, at=12),
        event("syscall", {"syscall": "read"}, at=15, pod="support-bot-7d4b9c5f6-abcde"),
        connected("api.openai.com", "162.159.140.247", at=16),
    ]
    state, published = AgentState(), []
    for e in events:
        step = on_event(state, e)
        state = step.state
        if step.aibom is not None:
            assert state.evidence is not None  # folded in place by the next event: a copy
            published.append((state.evidence.model_copy(deep=True), step.aibom))
    assert len(published) >= 8
    # The parts were reused: an endpoint service is built again only when its evidence changed.
    assert 0 < len(built) < sum(len(evidence.endpoints) for evidence, _ in published)
    for evidence, aibom in published:
        scratch = _from_scratch(evidence, aibom.revision, aibom.created_at)
        assert _occurrences_sorted(aibom.cyclonedx) == _occurrences_sorted(scratch), f"revision {aibom.revision}"
        assert strict_errors(scratch) is None


def test_the_parts_kept_for_the_next_revisions_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = cyclonedx_bom._Parts
    monkeypatch.setattr(parts, "MAX", 30)
    evidence = full_evidence()
    size = len(runtime_bom(evidence)["components"]) + len(runtime_bom(evidence)["services"])
    agents = [f"agents/bot-{n}" for n in range(4)]
    for agent in agents:
        runtime_bom(evidence.model_copy(update={"deployment": agent}))
    kept = [agent for agent in agents if agent in parts._recent]
    assert kept == agents[-(30 // size) :]  # the most recent agents' parts, within the bound
    assert parts._count == sum(len(p) for p in parts._recent.values()) <= 30


def test_a_revision_of_reused_parts_is_still_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    # The next revision reuses every part of the last; what it serialises to is checked again.
    evidence = full_evidence()
    runtime_bom(evidence, revision=1)
    cards = cyclonedx_bom._add_model_cards

    def spoiled(document: dict, cards_by_ref: dict) -> None:  # type: ignore[type-arg]
        cards(document, cards_by_ref)
        document["components"][0]["notAField"] = True

    monkeypatch.setattr(cyclonedx_bom, "_add_model_cards", spoiled)
    with pytest.raises(InvalidBom, match="does not validate"):
        runtime_bom(evidence, revision=2)
