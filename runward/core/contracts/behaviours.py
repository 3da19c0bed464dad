"""Behaviours: what an agent did, as one typed value per kind and one string form.

The string form (`Behaviour.key`, e.g. `egress:api.openai.com:443/tcp`) is what the APD stores
and the wire carries; `parse_behaviour` is the only place that takes it apart. Ingest builds the
types, the profiler, enforcer and bom read their fields: a renamed kind or a reordered key is a
type error or a failing round-trip test, not a silent mismatch between stages.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from runward.core.contracts.common import DeploymentId

_NO_SPACE = r"^\S+$"
_NO_SLASH = r"^[^/]+$"
_PORT = r"(?P<port>0|[1-9][0-9]{0,4})"
_PROTOCOL = r"(?P<protocol>tcp|udp)"


class _Behaviour(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    PREFIX: ClassVar[str]
    CATEGORY: ClassVar[str]
    """The APD category the behaviour is learnt under."""

    @property
    def key(self) -> str:
        return f"{self.PREFIX}:{self._value()}"

    @property
    def category(self) -> str:
        return self.CATEGORY

    def _value(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.key


class Exec(_Behaviour):
    """A binary the agent's containers executed."""

    PREFIX: ClassVar[str] = "exec"
    CATEGORY: ClassVar[str] = "exec"
    kind: Literal["exec"] = "exec"
    binary: str = Field(min_length=1)

    def _value(self) -> str:
        return self.binary


class File(_Behaviour):
    """A file opened, its path with high-cardinality segments collapsed by ingest."""

    PREFIX: ClassVar[str] = "file"
    CATEGORY: ClassVar[str] = "file"
    kind: Literal["file"] = "file"
    path: str = Field(min_length=1)

    def _value(self) -> str:
        return self.path


class Egress(_Behaviour):
    """An outbound connection, by DNS name where the sensor saw one, else by address.

    `endpoint` (`host:port/protocol`) is also how the APD's `egress_ip` refinements and the
    AI-BOM's endpoints are spelled; `parse_endpoint` reads it back.
    """

    PREFIX: ClassVar[str] = "egress"
    CATEGORY: ClassVar[str] = "egress"
    kind: Literal["egress"] = "egress"
    host: str = Field(min_length=1)
    port: int = Field(ge=0, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}/{self.protocol}"

    def _value(self) -> str:
        return self.endpoint


class Ingress(_Behaviour):
    """A port the agent accepted connections on."""

    PREFIX: ClassVar[str] = "ingress"
    CATEGORY: ClassVar[str] = "ingress"
    kind: Literal["ingress"] = "ingress"
    port: int = Field(ge=0, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"

    def _value(self) -> str:
        return f"{self.port}/{self.protocol}"


class Dns(_Behaviour):
    """A name the agent resolved (without the root dot)."""

    PREFIX: ClassVar[str] = "dns"
    CATEGORY: ClassVar[str] = "dns"
    kind: Literal["dns"] = "dns"
    name: str = Field(min_length=1)

    def _value(self) -> str:
        return self.name


class Syscall(_Behaviour):
    PREFIX: ClassVar[str] = "syscall"
    CATEGORY: ClassVar[str] = "syscalls"
    kind: Literal["syscall"] = "syscall"
    name: str = Field(min_length=1)

    def _value(self) -> str:
        return self.name


class Capability(_Behaviour):
    """A Linux capability the kernel checked for the agent (e.g. CAP_NET_BIND_SERVICE)."""

    PREFIX: ClassVar[str] = "cap"
    CATEGORY: ClassVar[str] = "capabilities"
    kind: Literal["cap"] = "cap"
    capability: str = Field(min_length=1)

    def _value(self) -> str:
        return self.capability


class ToolCall(_Behaviour):
    """An MCP (or local) tool the agent called. Tool names may contain '/', server names not."""

    PREFIX: ClassVar[str] = "tool"
    CATEGORY: ClassVar[str] = "mcp_tools"
    kind: Literal["tool"] = "tool"
    server: str = Field(min_length=1, pattern=_NO_SLASH)
    name: str = Field(min_length=1)

    def _value(self) -> str:
        return f"{self.server}/{self.name}"


class LlmCall(_Behaviour):
    """A model the agent chatted with. Model names may contain '/', provider names not."""

    PREFIX: ClassVar[str] = "llm"
    CATEGORY: ClassVar[str] = "llm"
    kind: Literal["llm"] = "llm"
    provider: str = Field(min_length=1, pattern=_NO_SLASH)
    model: str = Field(min_length=1)

    def _value(self) -> str:
        return f"{self.provider}/{self.model}"


class K8sApiCall(_Behaviour):
    """A Kubernetes API request made with the agent's ServiceAccount (from the audit log)."""

    PREFIX: ClassVar[str] = "k8s-api"
    CATEGORY: ClassVar[str] = "k8s_api"
    kind: Literal["k8s-api"] = "k8s-api"
    verb: str = Field(pattern=_NO_SPACE)
    group: str = Field(pattern=r"^[^/\s]+$", description="API group; 'core' for the legacy group")
    resource: str = Field(
        default="", pattern=r"^\S*$", description="resource[/subresource]; empty for a non-resource URL"
    )
    scope: str = Field(pattern=_NO_SPACE, description="the namespace, or 'cluster'")

    @property
    def is_secret_read(self) -> bool:
        return self.group == "core" and self.resource == "secrets"

    def _value(self) -> str:
        return f"{self.verb} {self.group}/{self.resource} in {self.scope}"


class AgentEdge(_Behaviour):
    """Another agent (its Deployment id) whose output drove this agent: an edge of the agent graph."""

    PREFIX: ClassVar[str] = "agent"
    CATEGORY: ClassVar[str] = "agents"
    kind: Literal["agent"] = "agent"
    caller: DeploymentId

    def _value(self) -> str:
        return self.caller


Behaviour = Annotated[
    Exec | File | Egress | Ingress | Dns | Syscall | Capability | ToolCall | LlmCall | K8sApiCall | AgentEdge,
    Field(discriminator="kind"),
]
KINDS: tuple[type[_Behaviour], ...] = (
    Exec,
    File,
    Egress,
    Ingress,
    Dns,
    Syscall,
    Capability,
    ToolCall,
    LlmCall,
    K8sApiCall,
    AgentEdge,
)
_BY_PREFIX: dict[str, type[_Behaviour]] = {k.PREFIX: k for k in KINDS}
CATEGORIES: frozenset[str] = frozenset(k.CATEGORY for k in KINDS)
_ADAPTER: TypeAdapter[Behaviour] = TypeAdapter(Behaviour)

_WHOLE_VALUE: dict[type[_Behaviour], str] = {
    # Kinds whose value part is one field, taken whole (a path may hold ':' and '/').
    Exec: "binary",
    File: "path",
    Dns: "name",
    Syscall: "name",
    Capability: "capability",
    AgentEdge: "caller",
}
_ENDPOINT = re.compile(rf"^(?P<host>.+):{_PORT}/{_PROTOCOL}$", re.DOTALL)
_INGRESS = re.compile(rf"^{_PORT}/{_PROTOCOL}$")
_K8S_API = re.compile(r"^(?P<verb>\S+) (?P<group>[^/\s]+)/(?P<resource>\S*) in (?P<scope>\S+)$")


def _fields(kind: type[_Behaviour], value: str) -> dict[str, str]:
    """The fields of a key's value part (after `prefix:`), or ValueError saying the expected form."""
    if kind is Egress:
        match = _ENDPOINT.match(value)
        form = "egress:<host>:<port>/<tcp|udp>"
    elif kind is Ingress:
        match = _INGRESS.match(value)
        form = "ingress:<port>/<tcp|udp>"
    elif kind is K8sApiCall:
        match = _K8S_API.match(value)
        form = "k8s-api:<verb> <group>/<resource> in <namespace|cluster>"
    elif kind in (ToolCall, LlmCall):
        first, sep, rest = value.partition("/")
        names = ("server", "name") if kind is ToolCall else ("provider", "model")
        if sep:
            return dict(zip(names, (first, rest), strict=True))
        raise ValueError(f"expected {kind.PREFIX}:<{names[0]}>/<{names[1]}>")
    else:
        return {_WHOLE_VALUE[kind]: value}
    if match is None:
        raise ValueError(f"expected {form}")
    return match.groupdict()


def parse_behaviour(key: str) -> Behaviour:
    """The behaviour a stored key names; ValueError naming the key when it is not one."""
    prefix, sep, value = key.partition(":")
    kind = _BY_PREFIX.get(prefix) if sep else None
    if kind is None:
        raise ValueError(
            f"behaviour key {key!r} has no known kind; a key is <kind>:<value> with kind one of "
            f"{', '.join(sorted(_BY_PREFIX))}"
        )
    try:
        return _ADAPTER.validate_python({"kind": prefix, **_fields(kind, value)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"behaviour key {key!r} is not a valid {prefix} behaviour: {problems}") from None
    except ValueError as exc:
        raise ValueError(f"behaviour key {key!r} is not a valid {prefix} behaviour: {exc}") from None


def parse_endpoint(endpoint: str) -> Egress:
    """`host:port/protocol` (an APD `egress_ip` entry, an AI-BOM endpoint key) as an Egress."""
    behaviour = parse_behaviour(f"{Egress.PREFIX}:{endpoint}")
    assert isinstance(behaviour, Egress)
    return behaviour


def _coerce(value: object) -> Behaviour:
    if isinstance(value, str):
        return parse_behaviour(value)
    if isinstance(value, _Behaviour):
        return _ADAPTER.validate_python(value)
    raise ValueError(f"a behaviour is its key string (e.g. 'exec:/usr/bin/python3'), got {type(value).__name__}")


def _key(behaviour: Behaviour) -> str:
    return behaviour.key


BehaviourKey = Annotated[
    Behaviour,
    PlainValidator(_coerce),
    PlainSerializer(_key, return_type=str),
    WithJsonSchema({"type": "string", "description": "behaviour key, <kind>:<value>"}),
]
"""A behaviour field of a record: typed in Python, its key string on the wire and in the store."""
