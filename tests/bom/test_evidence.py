"""Folding enriched events into runtime evidence: what counts as loaded, and when."""

from __future__ import annotations

import os

from services.bom.evidence import RuntimeEvidence, fold, observed_packages
from tests.bom.factories import SITE, T0, chat, connected, event, initialize, opened, tool_call, tools_list


def fold_all(events: list) -> RuntimeEvidence:  # type: ignore[type-arg]
    evidence = None
    for e in events:
        evidence, _ = fold(evidence, e)
    assert evidence is not None
    return evidence


def test_imports_are_read_from_code_file_opens_and_joined_to_dist_info_versions() -> None:
    ev = fold_all(
        [
            opened(f"{SITE}/httpx/__pycache__/__init__.cpython-311.pyc"),
            opened(f"{SITE}/httpx/__pycache__/_client.cpython-311.pyc"),
            opened(f"{SITE}/yaml/__pycache__/__init__.cpython-311.pyc"),
            opened(f"{SITE}/yaml/_yaml.cpython-311-x86_64-linux-gnu.so"),
            opened(f"{SITE}/__pycache__/typing_extensions.cpython-311.pyc"),
            opened(f"{SITE}/google/protobuf/__pycache__/__init__.cpython-311.pyc"),
            opened(f"{SITE}/google/protobuf/internal/__pycache__/builder.cpython-311.pyc"),
            opened(f"{SITE}/httpx-0.28.1.dist-info/METADATA"),
            opened(f"{SITE}/PyYAML-6.0.2.dist-info/METADATA"),
            opened(f"{SITE}/distutils-precedence.pth"),
            opened(f"{SITE}/__editable___runward_0_1_0_finder.py"),
        ]
    )
    assert sorted(ev.python_imports) == ["google.protobuf", "httpx", "typing_extensions", "yaml"]
    packages = {p.name: p for p in observed_packages(ev)}
    assert packages["httpx"].version == "0.28.1"
    assert packages["pyyaml"].version == "6.0.2" and packages["pyyaml"].imports == ["yaml"]
    assert packages["protobuf"].imports == ["google.protobuf"] and packages["protobuf"].version is None
    assert packages["typing-extensions"].imported
    # The extension module inside the yaml package is the package's code, not a native library.
    assert ev.native_libraries == {}


def test_nested_namespace_packages_resolve_to_their_distributions() -> None:
    ev = fold_all(
        [
            opened(f"{SITE}/opentelemetry/context/__pycache__/__init__.cpython-311.pyc"),
            opened(f"{SITE}/opentelemetry/trace/__pycache__/__init__.cpython-311.pyc"),
            opened(f"{SITE}/opentelemetry/exporter/otlp/proto/common/__pycache__/__init__.cpython-311.pyc"),
            opened(f"{SITE}/opentelemetry/exporter/otlp/proto/common/_internal/__pycache__/x.cpython-311.pyc"),
            opened(f"{SITE}/rpds/__init__.py"),
        ]
    )
    assert sorted(ev.python_imports) == [
        "opentelemetry.context",
        "opentelemetry.exporter.otlp.proto.common",
        "opentelemetry.trace",
        "rpds",
    ]
    packages = {p.name: p.imports for p in observed_packages(ev)}
    assert packages == {
        "opentelemetry-api": ["opentelemetry.context", "opentelemetry.trace"],
        "opentelemetry-exporter-otlp-proto-common": ["opentelemetry.exporter.otlp.proto.common"],
        "rpds-py": ["rpds"],
    }


def test_metadata_read_without_import_is_kept_apart() -> None:
    ev = fold_all([opened(f"{SITE}/requests-2.32.3.dist-info/METADATA")])
    (pkg,) = observed_packages(ev)
    assert pkg.name == "requests" and pkg.version == "2.32.3" and not pkg.imported


def test_native_libraries_and_vendored_shared_objects() -> None:
    ev = fold_all(
        [
            opened("/usr/lib/x86_64-linux-gnu/libssl.so.3"),
            opened(f"{SITE}/numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so"),
            opened("/usr/local/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"),
        ]
    )
    libs = {lib.name: lib for lib in ev.native_libraries.values()}
    assert set(libs) == {"libssl.so.3", "libopenblas64_p-r0-0cf96a72.3.23.dev.so"}
    assert libs["libopenblas64_p-r0-0cf96a72.3.23.dev.so"].package == "numpy"


def test_model_artifacts_are_named_from_the_path_and_never_claim_a_digest() -> None:
    hf = "/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B/snapshots/060db6499f32faf8b98477b0a26969ef7d8b9987"
    ev = fold_all(
        [
            opened(f"{hf}/model.safetensors"),
            opened("/models/llama-3.2-1b-q4.gguf"),
            opened("/models/llama-3.2-1b-q4.gguf", at=5),  # reopened: nothing new
            opened("/tmp/checkpoint.bin", flags=os.O_WRONLY | os.O_CREAT),  # written, not loaded
            opened("/proc/self/attr/current.bin"),
        ]
    )
    assert set(ev.model_files) == {f"{hf}/model.safetensors", "/models/llama-3.2-1b-q4.gguf"}
    qwen = ev.model_files[f"{hf}/model.safetensors"]
    assert (qwen.name, qwen.revision, qwen.format) == (
        "Qwen/Qwen2.5-0.5B",
        "060db6499f32faf8b98477b0a26969ef7d8b9987",
        "safetensors",
    )
    gguf = ev.model_files["/models/llama-3.2-1b-q4.gguf"]
    assert (gguf.name, gguf.format, gguf.first_seen) == ("llama-3.2-1b-q4.gguf", "gguf", T0)
    # The sensor sees opens, not bytes: the evidence has no size or digest field to fill by guessing.
    assert "sha256" not in gguf.model_dump() and "size" not in gguf.model_dump()


def test_models_requested_versus_served() -> None:
    ev = fold_all(
        [
            chat("openai", "gpt-4o", "gpt-4o-2024-08-06"),
            chat("openai", "gpt-4o", "gpt-4o-2024-11-20"),
            chat("anthropic", None, "claude-sonnet-4-5"),
        ]
    )
    assert ev.models["openai/gpt-4o"].served == ["gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]
    assert ev.models["anthropic/claude-sonnet-4-5"].requested is None


def test_tools_in_a_later_list_were_registered_after_startup() -> None:
    ev = fold_all(
        [
            event("exec", {"binary": "/usr/bin/python3"}, at=0),
            initialize("time", at=1),
            tools_list("time", ["convert_time", "get_current_time"], at=1),
            tool_call("time", "get_current_time", at=5),
            tools_list("time", ["convert_time", "get_current_time", "delete_records"], at=7),
        ]
    )
    assert {k: t.at_startup for k, t in ev.tools.items()} == {
        "time/convert_time": True,
        "time/get_current_time": True,
        "time/delete_records": False,
    }
    assert ev.tools["time/delete_records"].via == "list_changed"
    assert ev.mcp_servers["time"].at_startup and ev.mcp_servers["time"].initialized


def test_a_server_first_used_long_after_pod_start_is_late_and_so_are_its_tools() -> None:
    ev = fold_all(
        [
            event("exec", {"binary": "/usr/bin/python3"}, at=0),
            tools_list("github", ["create_issue"], at=3600),
            tool_call("github", "push_files", at=3700),
        ]
    )
    assert not ev.mcp_servers["github"].at_startup
    assert not ev.tools["github/create_issue"].at_startup
    assert ev.tools["github/push_files"].via == "execute_tool" and not ev.tools["github/push_files"].at_startup


def test_endpoints_keep_dns_name_and_addresses_and_are_classified() -> None:
    ev = fold_all(
        [
            connected("api.openai.com", "162.159.140.245"),
            connected("api.openai.com", "172.66.0.243"),
            connected(None, "10.0.3.7", port=6333),
            connected("kube-dns", "10.96.0.10", port=53),
        ]
    )
    openai = ev.endpoints["api.openai.com:443/tcp"]
    assert openai.addresses == ["162.159.140.245", "172.66.0.243"] and openai.kind == "model-provider"
    assert ev.endpoints["10.0.3.7:6333/tcp"].kind == "rag-source"
    assert ev.endpoints["kube-dns:53/tcp"].kind == "infrastructure"


def test_repeated_evidence_does_not_change_the_bom() -> None:
    first = opened(f"{SITE}/httpx/__pycache__/__init__.cpython-311.pyc")
    ev, changed = fold(None, first)
    assert changed
    ev, changed = fold(ev, opened(f"{SITE}/httpx/__pycache__/_api.cpython-311.pyc"))
    assert not changed
    ev, changed = fold(ev, chat("openai", "gpt-4o", "gpt-4o-2024-08-06"))
    assert changed
    _, changed = fold(ev, chat("openai", "gpt-4o", "gpt-4o-2024-08-06"))
    assert not changed
