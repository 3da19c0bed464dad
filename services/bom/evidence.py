"""Runtime evidence of what an agent really loaded, folded from enriched events.

Pure logic: the Faust app keeps `RuntimeEvidence` per Deployment in a changelogged table.
Evidence only grows with new facts (no counters), so `changed` means the AI-BOM changed.
"""

from __future__ import annotations

import os
import re
from datetime import datetime

from pydantic import BaseModel, Field

from runward.core.contracts import (
    ConnectInfo,
    DeploymentSpecInfo,
    Egress,
    EnrichedEvent,
    FileOpenInfo,
    LlmCallInfo,
)
from services.bom import endpoints as endpoint_kinds
from services.bom.python_packages import SitePath, classify, import_root, normalise

_NATIVE_LIB = re.compile(r"/(?P<file>[^/]+\.so(?:\.[0-9][0-9.]*)?)$")
_PY_EXTENSION = re.compile(r"\.(?:cpython-|pypy|abi3)")
_MODEL_FILE = re.compile(r"\.(?P<format>safetensors|gguf|ggml|onnx|bin|pt|pth|ckpt|tflite|mlmodel|h5|keras)$")
_HF_CACHE = re.compile(r"/models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<revision>[0-9a-f]{7,40})/")
_NOT_MODELS = re.compile(r"^/(?:proc|sys|dev)/|/(?:firmware|site-packages|dist-packages)/")

LOCAL = "local"
"""The server name of function tools: the agent's own code, no MCP server."""
STARTUP_GRACE_S = 60
"""A server first used this long after its pod's first event was registered after startup."""


class PythonImport(BaseModel):
    name: str = Field(description="import root, e.g. yaml or google.protobuf")
    site: str
    first_seen: datetime


class Distribution(BaseModel):
    name: str = Field(description="as spelled in its dist-info directory")
    version: str
    site: str
    first_seen: datetime


class NativeLibrary(BaseModel):
    name: str
    path: str
    package: str | None = Field(default=None, description="the wheel that vendors it (<pkg>.libs/)")
    first_seen: datetime


class ModelFile(BaseModel):
    path: str
    format: str
    name: str
    hf_repo: str | None = None
    revision: str | None = None
    first_seen: datetime


class ModelUse(BaseModel):
    provider: str
    requested: str | None = None
    served: list[str] = Field(default_factory=list)
    first_seen: datetime | None = None


class McpServer(BaseModel):
    name: str
    first_seen: datetime
    at_startup: bool
    initialized: bool = False


class ToolRegistration(BaseModel):
    server: str
    tool: str
    first_seen: datetime
    at_startup: bool
    via: str = Field(default="tools_list", description="tools_list, list_changed or execute_tool")


class Endpoint(BaseModel):
    host: str
    port: int
    protocol: str
    dns_name: str | None = None
    addresses: list[str] = Field(default_factory=list)
    kind: str = "external"
    first_seen: datetime
    provider: str | None = Field(default=None, description="the model provider a chat call reached here")


class RuntimeEvidence(BaseModel):
    deployment: str
    started_at: datetime
    pods: dict[str, datetime] = Field(default_factory=dict, description="pod -> its first event")
    images: list[str] = Field(default_factory=list)
    python_imports: dict[str, PythonImport] = Field(default_factory=dict)
    distributions: dict[str, Distribution] = Field(default_factory=dict, description="normalised name -> seen")
    native_libraries: dict[str, NativeLibrary] = Field(default_factory=dict, description="path -> library")
    model_files: dict[str, ModelFile] = Field(default_factory=dict, description="path -> artifact")
    models: dict[str, ModelUse] = Field(default_factory=dict, description="provider/requested -> use")
    mcp_servers: dict[str, McpServer] = Field(default_factory=dict)
    tools: dict[str, ToolRegistration] = Field(default_factory=dict, description="server/tool -> registration")
    listed: list[str] = Field(default_factory=list, description="pod|server pairs whose first tools/list was seen")
    endpoints: dict[str, Endpoint] = Field(default_factory=dict, description="host:port/proto -> endpoint")


def fold(evidence: RuntimeEvidence | None, event: EnrichedEvent) -> tuple[RuntimeEvidence, frozenset[str]]:
    """Add what the event shows was loaded; return the evidence and the sections that changed
    (empty: the BOM is unchanged).

    The evidence is updated in place (a new one is made for the first event): a busy agent
    sends thousands of events, most of them repeats, and copying its whole evidence for each
    would make the stage fall behind. The caller owns the evidence it passes in.
    """
    ev = evidence or RuntimeEvidence(deployment=event.deployment, started_at=event.ts)
    changes: set[str] = set()
    pod = event.pod or "-"
    if pod not in ev.pods:
        ev.pods[pod] = event.ts
        changes.add("pods")
    detail = event.detail
    if isinstance(detail, FileOpenInfo):
        changes |= _file_open(ev, event, detail)
    elif isinstance(detail, LlmCallInfo) and detail.kind == "chat":
        changes |= _chat(ev, event, detail)
    elif isinstance(detail, LlmCallInfo) and detail.kind in {"initialize", "tools_list", "execute_tool"}:
        changes |= _mcp(ev, event, detail)
    elif isinstance(detail, DeploymentSpecInfo):
        changes |= _deployment_spec(ev, detail)
    elif isinstance(detail, ConnectInfo) and isinstance(event.behaviour, Egress):
        changes |= _egress(ev, event, detail)
    return ev, frozenset(changes)


# --- files: packages, native libraries, model artifacts --------------------------------------


def _file_open(ev: RuntimeEvidence, event: EnrichedEvent, detail: FileOpenInfo) -> set[str]:
    path = detail.path
    changes: set[str] = set()
    site = classify(path)
    if site is not None:
        changes |= _python_file(ev, event, site, path)
    elif (
        (lib := _NATIVE_LIB.search(path))
        and not _PY_EXTENSION.search(lib.group("file"))
        and path not in ev.native_libraries
    ):
        ev.native_libraries[path] = NativeLibrary(name=lib.group("file"), path=path, first_seen=event.ts)
        changes.add("native_libraries")
    if (model := _MODEL_FILE.search(path)) and not _NOT_MODELS.search(path) and _reads(detail):
        changes |= _model_file(ev, event, path, model.group("format"))
    return changes


def _python_file(ev: RuntimeEvidence, event: EnrichedEvent, site: SitePath, path: str) -> set[str]:
    if site.kind == "dist-info":
        key = normalise(site.dist_name)
        if key in ev.distributions:
            return set()
        ev.distributions[key] = Distribution(
            name=site.dist_name, version=site.dist_version, site=site.site, first_seen=event.ts
        )
        return {"distributions"}
    if site.kind == "vendored-lib":
        if not _NATIVE_LIB.search(path) or path in ev.native_libraries:
            return set()
        ev.native_libraries[path] = NativeLibrary(
            name=path.rsplit("/", 1)[-1], path=path, package=site.package[0], first_seen=event.ts
        )
        return {"native_libraries"}
    if site.kind != "code":
        return set()  # .pth files, package data
    root = import_root(site, ev.python_imports.keys())
    if root is None or root.startswith("__"):
        return set()  # covered by a known root; editable-install finders
    ev.python_imports[root] = PythonImport(name=root, site=site.site, first_seen=event.ts)
    return {"python_imports"}


def _reads(detail: FileOpenInfo) -> bool:
    """Opened for reading: a checkpoint being written is not a model being loaded."""
    return detail.flags & os.O_ACCMODE != os.O_WRONLY


def _model_file(ev: RuntimeEvidence, event: EnrichedEvent, path: str, fmt: str) -> set[str]:
    # The sensor sees an open, not the file's bytes: no size or digest is claimed for it.
    if path in ev.model_files:
        return set()
    hf = _HF_CACHE.search(path)
    name = f"{hf.group('org')}/{hf.group('name')}" if hf else path.rsplit("/", 1)[-1]
    ev.model_files[path] = ModelFile(
        path=path,
        format=fmt,
        name=name,
        first_seen=event.ts,
        hf_repo=name if hf else None,
        revision=hf.group("revision") if hf else None,
    )
    return {"model_files"}


# --- LLM calls and MCP -----------------------------------------------------------------------


def _chat(ev: RuntimeEvidence, event: EnrichedEvent, detail: LlmCallInfo) -> set[str]:
    provider = detail.provider or "unknown"
    changes = _model_endpoint(ev, event, detail.endpoint, provider) if detail.endpoint else set()
    return changes | _model_use(ev, event, detail, provider)


def _model_endpoint(ev: RuntimeEvidence, event: EnrichedEvent, endpoint: str, provider: str) -> set[str]:
    """The model endpoint a chat call reached (server.address or the base URL): a service of the
    AI-BOM with its provider, whether or not the sensor saw the connection."""
    host, _, port_text = endpoint.rpartition(":") if ":" in endpoint else (endpoint, "", "")
    port = int(port_text) if port_text.isdigit() else 443
    try:
        peer = Egress(host=host.strip("[]").lower(), port=port, protocol="tcp")
    except ValueError:
        return set()  # not a host name or address: nothing to put in the AI-BOM
    known = ev.endpoints.get(peer.endpoint)
    if known is not None:
        if known.provider == provider:
            return set()
        known.provider, known.kind = provider, _model_kind(peer.host, port, known.kind)
        return {"endpoints"}
    ev.endpoints[peer.endpoint] = Endpoint(
        host=peer.host,
        port=port,
        protocol="tcp",
        first_seen=event.ts,
        kind=_model_kind(peer.host, port, endpoint_kinds.classify(peer.host, port, "tcp")),
        provider=provider,
    )
    return {"endpoints"}


def _model_kind(host: str, port: int, kind: str) -> str:
    """A host the provider table does not know (a gateway, a self-hosted server) that served a
    chat call is still a model endpoint."""
    return kind if kind == "model-provider" else "model-endpoint"


def _model_use(ev: RuntimeEvidence, event: EnrichedEvent, detail: LlmCallInfo, provider: str) -> set[str]:
    requested, served = detail.request_model, detail.response_model
    if not requested and not served:
        return set()
    key = f"{provider}/{requested or served}"
    use = ev.models.get(key)
    if use is not None and (not served or served in use.served):
        return set()
    if use is None:
        use = ev.models[key] = ModelUse(provider=provider, requested=requested, first_seen=event.ts)
    if served:
        use.served = sorted([*use.served, served])
    return {"models"}


def _mcp(ev: RuntimeEvidence, event: EnrichedEvent, detail: LlmCallInfo) -> set[str]:
    pod = event.pod or "-"
    if detail.mcp_server is None:
        # A function tool of the agent's own code: a tool of the AI-BOM, not an MCP server.
        late = (event.ts - ev.pods[pod]).total_seconds() > STARTUP_GRACE_S
        return (
            _register(ev, LOCAL, detail.tool_name, event.ts, at_startup=not late, via="execute_tool")
            if (detail.tool_name and event.kind == "execute_tool")
            else set()
        )
    server = detail.mcp_server
    changes: set[str] = set()
    if server not in ev.mcp_servers:
        late = (event.ts - ev.pods[pod]).total_seconds() > STARTUP_GRACE_S
        ev.mcp_servers[server] = McpServer(name=server, first_seen=event.ts, at_startup=not late)
        changes.add("mcp_servers")
    registered = ev.mcp_servers[server]
    if event.kind == "initialize":
        if not registered.initialized:
            registered.initialized = True
            changes.add("mcp_servers")
        return changes
    baseline_key = f"{pod}|{server}"
    if event.kind == "tools_list":
        # The first list a pod gets from a server is its startup toolset; anything a later
        # list adds was registered after startup (notifications/tools/list_changed).
        first = baseline_key not in ev.listed
        if first:
            ev.listed = sorted([*ev.listed, baseline_key])
        for listed in detail.tools:
            changes |= _register(
                ev,
                server,
                listed,
                event.ts,
                at_startup=first and registered.at_startup,
                via="tools_list" if first else "list_changed",
            )
        return changes
    if tool := detail.tool_name:
        # Called without ever being listed: late if the server's list is known, else by time.
        late = baseline_key in ev.listed or (event.ts - ev.pods[pod]).total_seconds() > STARTUP_GRACE_S
        changes |= _register(ev, server, tool, event.ts, at_startup=not late, via="execute_tool")
    return changes


def _register(ev: RuntimeEvidence, server: str, tool: str, ts: datetime, at_startup: bool, via: str) -> set[str]:
    key = f"{server}/{tool}"
    if key in ev.tools:
        return set()
    ev.tools[key] = ToolRegistration(server=server, tool=tool, first_seen=ts, at_startup=at_startup, via=via)
    return {"tools"}


# --- network and deployment ------------------------------------------------------------------


def _egress(ev: RuntimeEvidence, event: EnrichedEvent, detail: ConnectInfo) -> set[str]:
    address = detail.address
    dns_name = (detail.dns_name or "").rstrip(".") or None
    peer = Egress(host=dns_name or address, port=detail.port, protocol=detail.protocol)
    host, port, protocol = peer.host, peer.port, peer.protocol
    endpoint = ev.endpoints.get(peer.endpoint)
    if endpoint is None:
        endpoint = ev.endpoints[peer.endpoint] = Endpoint(
            host=host,
            port=port,
            protocol=protocol,
            dns_name=dns_name,
            first_seen=event.ts,
            kind=endpoint_kinds.classify(host, port, protocol),
        )
    elif not address or address in endpoint.addresses:
        return set()
    if address and address not in endpoint.addresses:
        endpoint.addresses = sorted([*endpoint.addresses, address])
    return {"endpoints"}


def _deployment_spec(ev: RuntimeEvidence, detail: DeploymentSpecInfo) -> set[str]:
    images = sorted({i for i in detail.images if i})
    if not images or images == ev.images:
        return set()
    ev.images = images
    return {"images"}


# --- views ------------------------------------------------------------------------------------


class ObservedPackage(BaseModel):
    """A Python distribution as the runtime shows it: imported (code opened) or only its metadata read."""

    name: str = Field(description="normalised distribution name (best guess when no dist-info was seen)")
    version: str | None = None
    imports: list[str] = Field(default_factory=list)
    site: str
    first_seen: datetime
    dist_info: str | None = Field(default=None, description="the dist-info directory the version came from")

    @property
    def imported(self) -> bool:
        return bool(self.imports)


def observed_packages(ev: RuntimeEvidence, known_names: list[str] | None = None) -> list[ObservedPackage]:
    """Join import roots to distributions: by dist-info seen, else by declared or well-known names."""
    from services.bom.python_packages import candidate_index, distribution_of

    candidates = candidate_index([*(d.name for d in ev.distributions.values()), *(known_names or [])])
    packages: dict[str, ObservedPackage] = {}
    for imp in sorted(ev.python_imports.values(), key=lambda i: i.name):
        name = distribution_of(imp.name, candidates)
        package = packages.get(name)
        if package is None:
            package = packages[name] = ObservedPackage(name=name, site=imp.site, first_seen=imp.first_seen)
        package.imports = sorted({*package.imports, imp.name})
        package.first_seen = min(package.first_seen, imp.first_seen)
    for key, dist in ev.distributions.items():
        package = packages.setdefault(key, ObservedPackage(name=key, site=dist.site, first_seen=dist.first_seen))
        package.version = dist.version
        package.dist_info = f"{dist.site}/{dist.name}-{dist.version}.dist-info"
    return sorted(packages.values(), key=lambda p: p.name)
