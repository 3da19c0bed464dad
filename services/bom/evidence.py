"""Runtime evidence of what an agent really loaded, folded from enriched events.

Pure logic: the Faust app keeps `RuntimeEvidence` per Deployment in a changelogged table.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field

from runward.contracts import EnrichedEvent

_DIST_INFO = re.compile(r"/(?:site|dist)-packages/([A-Za-z0-9_.]+?)-([0-9][^/]*?)\.dist-info/")
_NATIVE_LIB = re.compile(r"/(lib[^/]+\.so(?:\.[0-9.]+)?)$")
_MODEL_FILE = re.compile(r"\.(safetensors|gguf|onnx|bin|pt|pth)$")


class ModelUse(BaseModel):
    provider: str
    requested: str | None = None
    served: str | None = None
    calls: int = 0


class ToolRegistration(BaseModel):
    server: str
    tool: str
    first_seen: datetime
    at_startup: bool


class RuntimeEvidence(BaseModel):
    deployment: str
    started_at: datetime
    python_packages: dict[str, str] = Field(default_factory=dict, description="name -> version")
    native_libraries: list[str] = Field(default_factory=list)
    model_files: list[str] = Field(default_factory=list)
    models: dict[str, ModelUse] = Field(default_factory=dict, description="provider/requested -> use")
    tools: dict[str, ToolRegistration] = Field(default_factory=dict, description="server/tool -> registration")
    endpoints: list[str] = Field(default_factory=list, description="host:port/proto reached")


STARTUP_GRACE_S = 60


def fold(evidence: RuntimeEvidence | None, event: EnrichedEvent) -> tuple[RuntimeEvidence, bool]:
    """Add what the event shows was loaded; say whether the BOM changed."""
    ev = (evidence or RuntimeEvidence(deployment=event.deployment, started_at=event.ts)).model_copy(deep=True)
    before = ev.model_dump_json()
    detail = event.detail
    if event.kind == "file_open":
        path = str(detail.get("path", ""))
        if match := _DIST_INFO.search(path):
            ev.python_packages[_normalise(match.group(1))] = match.group(2)
        elif match := _NATIVE_LIB.search(path):
            ev.native_libraries = sorted({*ev.native_libraries, match.group(1)})
        if _MODEL_FILE.search(path):
            ev.model_files = sorted({*ev.model_files, path})
    elif event.kind == "chat":
        provider = detail.get("provider") or "unknown"
        requested = detail.get("request_model")
        key = f"{provider}/{requested or detail.get('response_model')}"
        use = ev.models.get(key) or ModelUse(provider=provider, requested=requested)
        use.served = detail.get("response_model") or use.served
        use.calls += 1
        ev.models[key] = use
    elif event.kind in {"tools_list", "execute_tool"}:
        server = detail.get("mcp_server") or "local"
        names = detail.get("tools") or ([detail["tool_name"]] if detail.get("tool_name") else [])
        for tool in names:
            key = f"{server}/{tool}"
            if key not in ev.tools:
                late = (event.ts - ev.started_at).total_seconds() > STARTUP_GRACE_S
                ev.tools[key] = ToolRegistration(server=server, tool=tool, first_seen=event.ts, at_startup=not late)
    elif event.category == "egress" and event.behaviour:
        ev.endpoints = sorted({*ev.endpoints, event.behaviour.removeprefix("egress:")})
    return ev, ev.model_dump_json() != before


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
