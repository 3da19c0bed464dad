"""What an enriched event says beyond its behaviour: one typed `detail` per event kind.

Ingest writes these; the profiler and the bom read their fields. The `kind` inside each
variant is the event's kind, so the union is discriminated on it and a field one stage expects
but no stage writes is a type error instead of a `.get()` that is always None.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Autonomy(StrEnum):
    """The `runward.io/autonomy` tier of an agent: how long its observation window is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Process(_Detail):
    pid: int | None = None
    comm: str | None = None


class ExecInfo(_Process):
    kind: Literal["exec"] = "exec"
    binary: str
    argv: list[str] = Field(default_factory=list, description="secrets redacted")


class ExitInfo(_Process):
    kind: Literal["exit"] = "exit"
    exit_code: int = 0


class FileOpenInfo(_Process):
    kind: Literal["file_open"] = "file_open"
    path: str = Field(description="as opened; the behaviour holds the collapsed path")
    flags: int = 0


class ConnectInfo(_Process):
    kind: Literal["connect", "accept"] = "connect"
    address: str
    port: int = Field(ge=0, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    dns_name: str | None = None
    family: Literal["ipv4", "ipv6"] = "ipv4"


class DnsInfo(_Process):
    kind: Literal["dns"] = "dns"
    name: str


class CapabilityInfo(_Process):
    kind: Literal["capability"] = "capability"
    capability: str


class SyscallInfo(_Process):
    kind: Literal["syscall"] = "syscall"
    syscall: str


LlmOperation = Literal["chat", "execute_tool", "invoke_agent", "tools_list", "initialize"]


class LlmCallInfo(_Detail):
    """An LLM or MCP call; content fields are None when the source does not capture content."""

    kind: LlmOperation
    operation: LlmOperation
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    tool_name: str | None = None
    mcp_server: str | None = None
    tool_call_id: str | None = None
    tools: list[str] = Field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    caller_agent: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    links: list[str] = Field(default_factory=list)
    agent_name: str | None = None
    endpoint: str | None = None
    content_of: str | None = Field(
        default=None, description="the call this record carries the content of (not a call of its own)"
    )
    prompt_injection: dict[str, Any] | None = Field(
        default=None, description="the injection detector's verdict: score, threshold, where, obfuscations"
    )
    input_messages: list[str] | None = None
    output_messages: list[str] | None = None
    tool_arguments: dict[str, Any] | None = None
    refused: bool = Field(default=False, description="the tool gateway refused the call: never baseline")


class K8sApiInfo(_Detail):
    kind: Literal["k8s_api"] = "k8s_api"
    verb: str
    api_group: str
    resource: str
    namespace: str
    name: str | None = None
    code: int = 0
    user_agent: str | None = None
    shared_service_account: bool = False


class DeploymentSpecInfo(_Detail):
    kind: Literal["deployment_spec"] = "deployment_spec"
    generation: int = 0
    autonomy: Autonomy = Autonomy.HIGH
    service_account: str = "default"
    images: list[str] = Field(default_factory=list)
    changed: bool = False
    previous_generation: int | None = None
    revision: str | None = Field(default=None, description="template hash of the pod template (the revision)")
    previous_revision: str | None = None
    pod_template_hash: str | None = Field(
        default=None, description="the current ReplicaSet's pod-template-hash label, when the watcher knows it"
    )
    image_digests: dict[str, list[str]] = Field(
        default_factory=dict, description="container name -> image digests the revision's pods run, when known"
    )
    selector: dict[str, Any] | None = Field(
        default=None,
        description="the Deployment's spec.selector (matchLabels, matchExpressions) as the API server returns "
        "it: the pods a NetworkPolicy for the agent must select (immutable in apps/v1)",
    )


class BaselineAcceptInfo(_Detail):
    """An approver accepted a story's behaviours into the agent's baseline (audited by the API)."""

    kind: Literal["baseline_accept"] = "baseline_accept"
    story_id: str
    approver: str
    reason: str
    behaviours: list[str] = Field(description="behaviour keys to join the baseline")


class FlushInfo(_Detail):
    """The profiler's punctuation: time passed for a quiet agent, nothing happened."""

    kind: Literal["flush"] = "flush"


EventDetail = Annotated[
    ExecInfo
    | ExitInfo
    | FileOpenInfo
    | ConnectInfo
    | DnsInfo
    | CapabilityInfo
    | SyscallInfo
    | LlmCallInfo
    | K8sApiInfo
    | BaselineAcceptInfo
    | DeploymentSpecInfo
    | FlushInfo,
    Field(discriminator="kind"),
]
