"""Records on the raw topics: what the sensor, the LLM/MCP instrumentation and
Kubernetes say, before ingest validates and attributes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runward.core.contracts.common import Attribution, Record
from runward.core.contracts.revision import PodTemplateRevision


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExecDetail(_Detail):
    kind: Literal["exec"] = "exec"
    binary: str
    argv: list[str] = Field(default_factory=list)
    ppid: int | None = None
    parent_comm: str | None = None


class ExitDetail(_Detail):
    kind: Literal["exit"] = "exit"
    exit_code: int = 0


class FileOpenDetail(_Detail):
    kind: Literal["file_open"] = "file_open"
    path: str
    flags: int = 0


class ConnectDetail(_Detail):
    """An outbound connect or an accepted inbound connection."""

    kind: Literal["connect", "accept"] = "connect"
    family: Literal["ipv4", "ipv6"] = "ipv4"
    address: str
    port: int = Field(ge=0, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    dns_name: str | None = None


class DnsDetail(_Detail):
    kind: Literal["dns"] = "dns"
    name: str
    qtype: str = "A"


class CapabilityDetail(_Detail):
    kind: Literal["capability"] = "capability"
    capability: str


class SyscallSetDetail(_Detail):
    """The syscalls a container made since the last read of its in-kernel bitmap."""

    kind: Literal["syscalls"] = "syscalls"
    syscalls: list[str]


SensorDetail = Annotated[
    ExecDetail | ExitDetail | FileOpenDetail | ConnectDetail | DnsDetail | CapabilityDetail | SyscallSetDetail,
    Field(discriminator="kind"),
]


class RawSensorEvent(Record):
    """One observation from the eBPF sensor (observation mode: it never blocks)."""

    event_id: str
    ts: datetime
    pid: int | None = None
    comm: str | None = None
    attribution: Attribution = Field(default_factory=Attribution)
    detail: SensorDetail
    kernel_losses: int = Field(default=0, ge=0, description="events lost for this container since its last event")


class RawLlmEvent(Record):
    """An LLM or MCP call as seen by instrumentation (OTLP GenAI/MCP spans or the gateway)."""

    event_id: str
    ts: datetime
    attribution: Attribution = Field(default_factory=Attribution)
    operation: Literal["chat", "execute_tool", "invoke_agent", "tools_list", "initialize"]
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_arguments: dict[str, Any] | None = None
    mcp_server: str | None = None
    tools: list[str] = Field(default_factory=list)
    input_messages: list[str] = Field(default_factory=list)
    output_messages: list[str] = Field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    caller_agent: str | None = Field(
        default=None, description="Deployment id of another agent whose output triggered this call"
    )
    endpoint: str | None = Field(
        default=None, description="the model endpoint a chat call reached: server.address[:port] or base URL host"
    )
    trace_id: str | None = Field(default=None, description="W3C trace id (32 hex) of the span or request")
    span_id: str | None = Field(default=None, description="W3C span id (16 hex) of this call")
    parent_span_id: str | None = Field(default=None, description="span id of the caller's span, in the same trace")
    links: list[str] = Field(
        default_factory=list, description="span links as `trace_id:span_id` (a hand-off from another trace)"
    )
    agent_name: str | None = Field(default=None, description="gen_ai.agent.name: the agent that made the call")
    conversation_id: str | None = Field(default=None, description="gen_ai.conversation.id: the chat session")
    content_of: str | None = Field(
        default=None,
        description="event_id of the call whose content this record carries (GenAI events sent as OTLP log "
        "records); such a record is scanned, not counted as a call of its own",
    )
    refused: bool = Field(
        default=False,
        description="the tool gateway refused this call (enforce mode or fail closed): attempted, never "
        "achieved, so never learnt into the APD",
    )


class K8sObjectEvent(Record):
    """A watch event for a Kubernetes object (Deployment, ReplicaSet, Pod, ServiceAccount, Role,
    ClusterRole, RoleBinding, ClusterRoleBinding), as `runward watch` or a replay publishes it."""

    source: Literal["k8s_object"] = "k8s_object"
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    ts: datetime | None = Field(default=None, description="when the watch event was observed")
    object: dict[str, Any] = Field(
        description="the object as the API server returns it (kind and apiVersion set; managedFields, "
        "last-applied-configuration and secret env values removed by the watcher)"
    )
    revision: PodTemplateRevision | None = Field(
        default=None,
        description="Deployment, ReplicaSet, Pod: the pod-template revision it is or runs "
        "(a Deployment revision is its pod template, not metadata.generation)",
    )


class K8sAuditEvent(Record):
    """An `audit.k8s.io/v1` Event, kept whole."""

    source: Literal["k8s_audit"] = "k8s_audit"
    event: dict[str, Any]


RawK8sRecord = Annotated[K8sObjectEvent | K8sAuditEvent, Field(discriminator="source")]
