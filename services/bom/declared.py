"""The declared side of the AI-BOM: what an agent's deployment pipeline says it loads.

Pure: a DeclaredManifest (the Deployment, requirements / lock-file lines, MCP client
configuration) in, a DeclaredBom out. File formats are turned into requirement lines by
`requirements_from_text` so the record on runward.declared stays one shape.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, Field

from runward.core.contracts import DeclaredManifest
from runward.core.redaction import REDACTED, redact_text, redact_value
from services.bom.endpoints import MODEL_PROVIDERS
from services.bom.python_packages import normalise

MODELS_ANNOTATION = "runward.io/models"
EGRESS_ANNOTATION = "runward.io/egress"

_MODEL_ENV = re.compile(r"(?:^|_)(?:MODEL|MODEL_NAME|MODEL_ID)$|^AZURE_OPENAI_(?:\w+_)?DEPLOYMENT(?:_NAME)?$")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")
_SECRET_ENV = re.compile(r"(?i)key|secret|token|password|passwd|credential")
_ENV_PROVIDERS = (
    ("AZURE_OPENAI", "azure.ai.openai"),
    ("OPENAI", "openai"),
    ("ANTHROPIC", "anthropic"),
    ("CLAUDE", "anthropic"),
    ("GEMINI", "gcp.gemini"),
    ("GOOGLE", "gcp.gemini"),
    ("VERTEX", "gcp.vertex_ai"),
    ("MISTRAL", "mistral_ai"),
    ("COHERE", "cohere"),
    ("GROQ", "groq"),
    ("BEDROCK", "aws.bedrock"),
    ("DEEPSEEK", "deepseek"),
    ("TOGETHER", "together"),
    ("OPENROUTER", "openrouter"),
    ("OLLAMA", "ollama"),
    ("HF", "huggingface"),
    ("HUGGINGFACE", "huggingface"),
)


class DeclaredError(ValueError):
    """A declared input that cannot be read; the message names the file and the problem."""


class DeclaredPackage(BaseModel):
    name: str = Field(description="normalised distribution name")
    version: str | None = Field(default=None, description="the pinned version (==), if pinned")
    specifier: str = ""
    source: str = "requirements"


class DeclaredModel(BaseModel):
    name: str
    provider: str | None = None
    source: str


class DeclaredMcpServer(BaseModel):
    name: str
    transport: str
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    url: str | None = None
    package: str | None = Field(default=None, description="pypi:<name>[==v], npm:<name>[@v] or oci:<image>")
    module: str | None = Field(default=None, description="python -m <module>")
    tools: list[str] | None = Field(default=None, description="tools the configuration names, if any")


class DeclaredBom(BaseModel):
    deployment: str
    images: list[str] = Field(default_factory=list)
    packages: dict[str, DeclaredPackage] = Field(default_factory=dict)
    modules: list[str] = Field(default_factory=list, description="import names run with python -m")
    models: list[DeclaredModel] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    mcp_servers: dict[str, DeclaredMcpServer] = Field(default_factory=dict)
    endpoints: list[str] = Field(default_factory=list, description="host patterns, host:port or CIDRs")
    has_manifest: bool = False
    has_requirements: bool = False
    has_mcp_config: bool = False


def declared_bom(manifest: DeclaredManifest) -> DeclaredBom:
    bom = DeclaredBom(
        deployment=manifest.deployment,
        has_manifest=manifest.deployment_manifest is not None,
        has_requirements=bool(manifest.requirements),
        has_mcp_config=manifest.mcp_config is not None,
    )
    for package in parse_requirements(manifest.requirements):
        bom.packages[package.name] = package
    if manifest.deployment_manifest is not None:
        _read_deployment(bom, manifest.deployment_manifest)
    if manifest.mcp_config is not None:
        for server in parse_mcp_config(manifest.mcp_config):
            bom.mcp_servers[server.name] = server
            _declare_server_parts(bom, server)
    bom.providers = sorted(set(bom.providers) | {m.provider for m in bom.models if m.provider})
    bom.endpoints = sorted(
        set(bom.endpoints) | {host for host, provider in MODEL_PROVIDERS.items() if provider in bom.providers}
    )
    return bom


# --- requirements and lock files -------------------------------------------------------------


def parse_requirements(lines: Iterable[str]) -> list[DeclaredPackage]:
    packages: list[DeclaredPackage] = []
    for line in _logical_lines(lines):
        if line.startswith(("-", "--")) or "://" in line.split(";")[0] and "@" not in line:
            continue  # pip options (-r, -e, --index-url) and bare URLs name no distribution to pin
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise DeclaredError(f"requirement {line!r} is not PEP 508: {exc}") from None
        pins = [s.version for s in req.specifier if s.operator in {"==", "==="} and "*" not in s.version]
        packages.append(
            DeclaredPackage(name=normalise(req.name), version=pins[0] if pins else None, specifier=str(req.specifier))
        )
    return packages


def _logical_lines(lines: Iterable[str]) -> Iterable[str]:
    buffer = ""
    for raw in lines:
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        line, buffer = (buffer + line).strip(), ""
        line = re.sub(r"\s--hash[= ]\S+", "", line).strip()  # pip-compile --generate-hashes
        if line:
            yield line
    if buffer.strip():
        yield buffer.strip()


def requirements_from_text(filename: str, text: str) -> list[str]:
    """requirements.txt lines as they are; lock files (poetry.lock, uv.lock, pylock.toml,
    Pipfile.lock) as `name==version` lines."""
    base = filename.rsplit("/", 1)[-1].lower()
    try:
        if base == "pipfile.lock":
            data = json.loads(text)
            return sorted(
                f"{name}{spec.get('version', '')}"
                for section in ("default", "develop")
                for name, spec in (data.get(section) or {}).items()
                if isinstance(spec, dict)
            )
        if base.endswith(".lock") or base.endswith(".toml"):
            data = tomllib.loads(text)
            if isinstance(data.get("project"), dict):  # pyproject.toml: the declared dependencies
                return [str(d) for d in data["project"].get("dependencies") or []]
            entries = data.get("package") or data.get("packages") or []
            if not isinstance(entries, list):
                raise DeclaredError(f"{filename}: no [[package]] tables; is it a lock file?")
            return sorted(f"{e['name']}=={e['version']}" for e in entries if e.get("name") and e.get("version"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DeclaredError(f"{filename}: cannot parse lock file: {exc}") from None
    return [line for line in text.splitlines()]


# --- the Deployment --------------------------------------------------------------------------


def load_deployment_yaml(text: str, deployment: str | None = None) -> dict[str, Any]:
    """The apps/v1 Deployment from a (multi-document) manifest, with secret env values redacted."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise DeclaredError(f"manifest is not YAML: {exc}") from None
    found = [d for d in docs if d.get("kind") == "Deployment"]
    if not found:
        raise DeclaredError("manifest has no kind: Deployment document")
    if deployment:
        namespace, _, name = deployment.partition("/")
        named = [
            d
            for d in found
            if (d.get("metadata") or {}).get("name") == name
            and (d.get("metadata") or {}).get("namespace", namespace) == namespace
        ]
        if not named:
            present = ", ".join(
                f"{(d.get('metadata') or {}).get('namespace', '?')}/{(d.get('metadata') or {}).get('name', '?')}"
                for d in found
            )
            raise DeclaredError(f"manifest has no Deployment {deployment} (it has {present})")
        found = named
    return redact_manifest(found[0])


def redact_manifest(doc: dict[str, Any]) -> dict[str, Any]:
    """Secret-looking env values never go on the topic; names stay (they declare providers)."""
    clean = json.loads(json.dumps(doc))
    for container in _containers(clean):
        for env in container.get("env") or []:
            if not isinstance(env, dict) or not isinstance(env.get("value"), str):
                continue
            if _SECRET_ENV.search(str(env.get("name", ""))):
                env["value"] = REDACTED
            else:  # postgresql://user:password@db/... under an innocent name
                env["value"] = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", redact_text(env["value"])[0])
    return clean


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])] if isinstance(c, dict)]


def _read_deployment(bom: DeclaredBom, doc: dict[str, Any]) -> None:
    annotations = {
        **((doc.get("metadata") or {}).get("annotations") or {}),
        **((((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}),
    }
    for container in _containers(doc):
        if container.get("image"):
            bom.images.append(str(container["image"]))
        for env in container.get("env") or []:
            if isinstance(env, dict):
                _read_env(bom, str(env.get("name", "")), env.get("value"))
    for model in _split(annotations.get(MODELS_ANNOTATION)):
        provider, name = _provider_prefix(model)
        bom.models.append(DeclaredModel(name=name, provider=provider, source=f"annotation {MODELS_ANNOTATION}"))
    bom.endpoints += _split(annotations.get(EGRESS_ANNOTATION))
    bom.images = sorted(set(bom.images))


def _read_env(bom: DeclaredBom, name: str, value: Any) -> None:
    provider = next((p for prefix, p in _ENV_PROVIDERS if name.startswith(prefix + "_")), None)
    if provider and (_SECRET_ENV.search(name) or _MODEL_ENV.search(name) or "URL" in name or "ENDPOINT" in name):
        bom.providers.append(provider)
    if not isinstance(value, str) or not value or value == REDACTED:
        return
    if _MODEL_ENV.search(name) and "://" not in value:
        prefixed, model = _provider_prefix(value)
        bom.models.append(DeclaredModel(name=model, provider=prefixed or provider, source=f"env {name}"))
    elif "://" in value and (host := url_host(value)):
        bom.endpoints.append(host)


def url_host(url: str) -> str | None:
    """The host of a URL, ignoring userinfo (which may hold a redacted password)."""
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    try:
        return urlsplit(f"{scheme}://{netloc}").hostname
    except ValueError:
        return None


def _provider_prefix(value: str) -> tuple[str | None, str]:
    """litellm-style `openai/gpt-4o` or `anthropic:claude-...`; HF repos (`org/name`) stay whole."""
    head, sep, rest = value.partition("/") if "/" in value else value.partition(":")
    known = {p for _, p in _ENV_PROVIDERS} | {"azure", "vertex_ai", "bedrock"}
    if sep and head.lower() in known:
        return head.lower(), rest
    return None, value


def _split(value: Any) -> list[str]:
    return [v.strip() for v in str(value or "").replace("\n", ",").split(",") if v.strip()]


# --- MCP client configuration ----------------------------------------------------------------


def parse_mcp_config(config: dict[str, Any]) -> list[DeclaredMcpServer]:
    """`mcpServers` (Claude Desktop, Cursor, Cline) or `servers` (VS Code .vscode/mcp.json)."""
    servers = config.get("mcpServers") or config.get("servers") or (config.get("mcp") or {}).get("servers")
    if not isinstance(servers, dict):
        raise DeclaredError("MCP configuration has no mcpServers (or VS Code servers) object")
    out = []
    for name, entry in sorted(servers.items()):
        if not isinstance(entry, dict) or entry.get("disabled") is True:
            continue
        url = entry.get("url") or entry.get("serverUrl")
        command = entry.get("command")
        args = [str(a) for a in entry.get("args") or []]
        transport = str(entry.get("type") or entry.get("transport") or ("http" if url else "stdio"))
        tools = next(
            (
                entry[k]
                for k in ("tools", "allowedTools", "alwaysAllow", "autoApprove")
                if isinstance(entry.get(k), list)
            ),
            None,
        )
        server = DeclaredMcpServer(
            name=str(name),
            transport=transport,
            command=command,
            args=args,
            url=url,
            tools=[str(t) for t in tools] if tools is not None else None,
        )
        if command:
            server.package, server.module = _launch_target(str(command), args)
        out.append(server)
    return out


def _launch_target(command: str, args: list[str]) -> tuple[str | None, str | None]:
    """What a stdio server's command runs: a PyPI package, an npm package, a module, an image."""
    words = [command.rsplit("/", 1)[-1], *args]
    program = words[0]
    if program in {"runward", "python", "python3"} and "gateway" in words and "--" in words:
        return _launch_target(words[words.index("--") + 1], words[words.index("--") + 2 :])  # gateway-wrapped
    if program.startswith("python") and "-m" in words[:-1]:
        return None, words[words.index("-m") + 1]
    options = [w for w in words[1:] if not w.startswith("-")]
    if program in {"uvx", "pipx"}:
        if "--from" in words[:-1]:
            return f"pypi:{words[words.index('--from') + 1]}", None
        targets = options[1:] if program == "pipx" and options[:1] == ["run"] else options
        return (f"pypi:{targets[0]}" if targets else None), None
    if program in {"npx", "bunx", "pnpx"} and options:
        return f"npm:{options[0]}", None
    if program in {"docker", "podman"} and "run" in words:
        images = [w for w in words[words.index("run") + 1 :] if not w.startswith("-") and "=" not in w]
        return (f"oci:{images[0]}" if images else None), None
    return None, None


def _declare_server_parts(bom: DeclaredBom, server: DeclaredMcpServer) -> None:
    if server.url and (host := url_host(server.url)):
        bom.endpoints.append(host)
    if server.module:
        bom.modules = sorted({*bom.modules, server.module})
    if server.package and server.package.startswith("pypi:"):
        for package in parse_requirements([server.package.removeprefix("pypi:").replace("@", "==", 1)]):
            bom.packages.setdefault(package.name, package.model_copy(update={"source": f"mcp:{server.name}"}))


def redact_mcp_config(config: dict[str, Any]) -> dict[str, Any]:
    """Env and headers of MCP servers commonly hold API keys."""
    clean: dict[str, Any] = redact_value(config)[0]
    return clean


def command_line(server: DeclaredMcpServer) -> str:
    if server.command:
        return shlex.join([server.command, *server.args])
    return server.url or ""
