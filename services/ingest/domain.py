"""Ingest's pure logic: attribute raw records to an agent and turn them into enriched events.

No Kafka, no store: the Faust app in `app.py` feeds records in and publishes what comes out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from runward.core.codec import RejectedRecord
from runward.core.config import AUTONOMY_ANNOTATION, autonomy_of
from runward.core.contracts import (
    AgentEdge,
    Attribution,
    Behaviour,
    Capability,
    CapabilityDetail,
    CapabilityInfo,
    ConnectDetail,
    ConnectInfo,
    DeploymentSpecInfo,
    Dns,
    DnsDetail,
    DnsInfo,
    Egress,
    EnrichedEvent,
    EventDetail,
    Exec,
    ExecDetail,
    ExecInfo,
    ExitDetail,
    ExitInfo,
    File,
    FileOpenDetail,
    FileOpenInfo,
    Ingress,
    K8sApiCall,
    K8sApiInfo,
    K8sAuditEvent,
    K8sObjectEvent,
    LlmCall,
    LlmCallInfo,
    RawLlmEvent,
    RawSensorEvent,
    SourceRef,
    Surface,
    Syscall,
    SyscallInfo,
    SyscallSetDetail,
    ToolCall,
    deployment_id,
)
from runward.core.contracts.revision import PodTemplateRevision, pod_template_revision, same_revision, template_hash
from runward.core.redaction import redact_argv, redact_text, redact_value
from services.ingest.injection import Detector, shipped_model

log = logging.getLogger(__name__)


class Registry(Protocol):
    """What ingest knows about the cluster: a key-value view of Pods, ReplicaSets and Deployments."""

    def get(self, key: str) -> Any: ...
    def __setitem__(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class Identity:
    deployment: str
    namespace: str
    pod: str | None
    service_account: str | None
    revision: str | None = None  # the pod-template revision the pod runs, when known


# --- event time ------------------------------------------------------------------------------


def require_zone(ts: datetime) -> None:
    """A time without a zone cannot be compared with anything: the record is refused with the reason."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise RejectedRecord(
            f"event time {ts.isoformat()} has no time zone; send RFC 3339 times with an offset (e.g. Z)"
        )


def trust_time(event: EnrichedEvent, received_at: datetime, max_skew: timedelta) -> EnrichedEvent:
    """The event with its receipt time, and its event time clamped to that within `max_skew`.

    A sender's clock is evidence, not authority: a backdated event would otherwise join a finished
    baseline without a signal, and a year-0001 first event would complete an observation window
    at once. A time without a zone cannot be compared with anything, so it is refused.

    The event is one ingest has just built for this record: it is stamped in place, not copied
    (a copy per event was a tenth of a file open's enrichment).
    """
    claimed = event.ts
    require_zone(claimed)
    event.received_at = received_at
    if abs(claimed - received_at) > max_skew:
        event.ts, event.claimed_ts, event.flags = received_at, claimed, [*event.flags, "clock_skew"]
    return event


# --- Kubernetes objects ---------------------------------------------------------------------

_POD_TEMPLATE_HASH = re.compile(r"-[a-z0-9]{5,10}$")
WORKLOAD_KINDS = frozenset({"Pod", "ReplicaSet", "Deployment"})
RBAC_KINDS = frozenset({"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def apply_k8s_object(registry: Registry, event: K8sObjectEvent, ts: datetime, source: SourceRef) -> list[EnrichedEvent]:
    """Learn ownership, revisions and identities from cluster objects; turn Deployment revisions into events."""
    obj = event.object
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name")
    if not name or kind not in WORKLOAD_KINDS | RBAC_KINDS:
        raise RejectedRecord(
            f"k8s object without metadata.name or of unsupported kind {kind!r}; send "
            + ", ".join(sorted(WORKLOAD_KINDS | RBAC_KINDS))
            + " objects as the API server returns them"
        )
    if kind in RBAC_KINDS:
        apply_rbac_object(registry, event, str(kind), namespace, name)
        return []
    if kind == "ReplicaSet":
        owner = _controller(meta, "Deployment")
        if owner:
            registry[f"rs:{namespace}/{name}"] = owner
            template = (obj.get("spec") or {}).get("template") or {}
            revision = event.revision.template_hash if event.revision else template_hash(template)
            registry[f"rsrev:{namespace}/{name}"] = revision
        return []
    if kind == "Pod":
        return _apply_pod(registry, event, namespace, name, meta)
    return _apply_deployment(registry, event, ts, source, namespace, name)


def _apply_pod(
    registry: Registry, event: K8sObjectEvent, namespace: str, name: str, meta: dict[str, Any]
) -> list[EnrichedEvent]:
    deployment = _pod_deployment(registry, namespace, meta)
    if deployment is None:
        return []  # not an agent Deployment's pod (a Job, a bare pod): nothing to attribute
    spec = event.object.get("spec") or {}
    replica_set = _controller(meta, "ReplicaSet") or ""
    # The revision a pod runs: the watcher names it; else its ReplicaSet's template, as ingest saw it.
    revision = event.revision.template_hash if event.revision else registry.get(f"rsrev:{namespace}/{replica_set}")
    identity = {
        "deployment": deployment,
        "namespace": namespace,
        "pod": name,
        "service_account": spec.get("serviceAccountName") or "default",
        "revision": revision,
        "replica_set": replica_set,
    }
    if event.type == "DELETED":
        return []
    registry[f"podname:{namespace}/{name}"] = identity
    released = learn_service_account(registry, Identity(deployment, namespace, name, identity["service_account"]))
    if meta.get("uid"):
        registry[f"pod:{meta['uid']}"] = identity
    for status in (event.object.get("status") or {}).get("containerStatuses") or []:
        container_id = (status.get("containerID") or "").split("://")[-1]
        if container_id:
            registry[f"cid:{container_id}"] = identity
    return released


def _apply_deployment(
    registry: Registry, event: K8sObjectEvent, ts: datetime, source: SourceRef, namespace: str, name: str
) -> list[EnrichedEvent]:
    """A Deployment revision is its pod template (`runward.core.contracts.revision`), not
    `metadata.generation`: scaling and annotation- or label-only edits are no rollout an attacker
    could hide behaviour in. An autonomy change is still told to the profiler, as no rollout."""
    obj, meta = event.object, event.object.get("metadata") or {}
    dep = deployment_id(namespace, name)
    previous = registry.get(f"dep:{dep}") or {}
    template = (obj.get("spec") or {}).get("template") or {}
    pod_spec = template.get("spec") or {}
    revision = event.revision or pod_template_revision(template)
    state = {
        "generation": int(meta.get("generation") or 0),
        "autonomy": autonomy_of((meta.get("annotations") or {}).get(AUTONOMY_ANNOTATION)).value,
        "service_account": pod_spec.get("serviceAccountName") or "default",
        "images": sorted(c.get("image", "") for c in pod_spec.get("containers") or []),
        "revision": revision.template_hash,
        "image_digests": revision.image_digests,
        "pod_template_hash": revision.pod_template_hash,
        "selector": (obj.get("spec") or {}).get("selector"),
    }
    registry[f"dep:{dep}"] = state
    changed = bool(previous) and not _same_revision(previous, state)
    if event.type == "DELETED" or (previous and not changed and not _news(previous, state)):
        return []
    detail = {
        **state,
        "changed": changed,
        "previous_generation": previous.get("generation"),
        "previous_revision": previous.get("revision"),
    }
    return [
        EnrichedEvent(
            event_id=_event_id(source),
            ts=ts,
            deployment=dep,
            namespace=namespace,
            service_account=state["service_account"],
            surface=Surface.DEPLOYMENT,
            kind="deployment_spec",
            detail=DeploymentSpecInfo.model_validate(detail),
            source=source,
        )
    ]


def _news(previous: dict[str, Any], state: dict[str, Any]) -> bool:
    """Something the profiler and enforcer need that is no rollout: an autonomy change, or the same
    revision refined (its pod-template-hash, digests or the selector became known)."""
    if previous.get("autonomy") != state["autonomy"]:
        return True
    return any(state[k] and previous.get(k) != state[k] for k in ("pod_template_hash", "image_digests", "selector"))


def _same_revision(previous: dict[str, Any], state: dict[str, Any]) -> bool:
    if "revision" not in previous:
        return True  # learnt before revisions were kept: the next template change is the first we can tell
    return same_revision(
        PodTemplateRevision(template_hash=previous["revision"], image_digests=previous.get("image_digests") or {}),
        PodTemplateRevision(template_hash=state["revision"], image_digests=state.get("image_digests") or {}),
    )


def apply_rbac_object(registry: Registry, event: K8sObjectEvent, kind: str, namespace: str, name: str) -> None:
    """ServiceAccounts, Roles and bindings: what the identity surface needs to name who may do what.

    Kept per ServiceAccount: the bindings that grant it something, and each role's rules.
    """
    obj, deleted = event.object, event.type == "DELETED"
    if kind == "ServiceAccount":
        registry[f"saobj:{namespace}/{name}"] = (
            None if deleted else {"automount": obj.get("automountServiceAccountToken")}
        )
        return
    if kind in {"Role", "ClusterRole"}:
        key = f"role:{namespace}/{name}" if kind == "Role" else f"clusterrole:{name}"
        registry[key] = None if deleted else {"rules": obj.get("rules") or []}
        return
    binding = f"{kind}:{namespace}/{name}" if kind == "RoleBinding" else f"{kind}:{name}"
    role_ref = obj.get("roleRef") or {}
    for subject in obj.get("subjects") or []:
        if subject.get("kind") != "ServiceAccount" or not subject.get("name"):
            continue
        sa = f"{subject.get('namespace') or namespace}/{subject['name']}"
        grants = {k: v for k, v in (registry.get(f"sabindings:{sa}") or {}).items() if k != binding}
        if not deleted:
            grants[binding] = {"kind": role_ref.get("kind"), "name": role_ref.get("name")}
        registry[f"sabindings:{sa}"] = grants


def _controller(meta: dict[str, Any], kind: str) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller", True):
            return str(ref.get("name"))
    return None


def _pod_deployment(registry: Registry, namespace: str, meta: dict[str, Any]) -> str | None:
    replica_set = _controller(meta, "ReplicaSet")
    if replica_set is None:
        return None
    owner = registry.get(f"rs:{namespace}/{replica_set}")
    # Before the ReplicaSet is seen, its name minus the pod-template-hash is the Deployment's.
    name = owner or _POD_TEMPLATE_HASH.sub("", replica_set)
    return deployment_id(namespace, name)


# --- attribution ------------------------------------------------------------------------------


def attribute(registry: Registry, attribution: Attribution) -> Identity:
    if attribution.deployment:
        namespace = attribution.namespace or attribution.deployment.partition("/")[0]
        pod = registry.get(f"podname:{namespace}/{attribution.pod}") if attribution.pod else None
        revision = _pod_revision(registry, pod) if pod and pod.get("deployment") == attribution.deployment else None
        return Identity(attribution.deployment, namespace, attribution.pod, attribution.service_account, revision)
    for key in (
        f"pod:{attribution.pod_uid}" if attribution.pod_uid else None,
        f"cid:{attribution.container_id}" if attribution.container_id else None,
    ):
        known = registry.get(key) if key else None
        if known:
            return Identity(
                known["deployment"],
                known["namespace"],
                known["pod"],
                known["service_account"],
                _pod_revision(registry, known),
            )
    raise RejectedRecord(
        "cannot attribute event to a Deployment: no pod known for "
        f"pod_uid={attribution.pod_uid!r} container_id={attribution.container_id!r}; "
        "publish the Pod and ReplicaSet objects to runward.raw.k8s or set attribution.deployment"
    )


def _pod_revision(registry: Registry, pod: dict[str, Any]) -> str | None:
    """The revision a pod runs; looked up again when its ReplicaSet arrived after it (raw k8s
    records are keyed per object, so they race across partitions)."""
    if pod.get("revision"):
        return str(pod["revision"])
    found = registry.get(f"rsrev:{pod['namespace']}/{pod.get('replica_set') or ''}")
    return str(found) if found else None


# --- sensor events ------------------------------------------------------------------------------

_HIGH_CARDINALITY = (
    (re.compile(r"^/proc/\d+/"), "/proc/*/"),
    (re.compile(r"/[0-9a-f]{16,}(?=/|$)"), "/*"),
    (re.compile(r"/\d{3,}(?=/|$)"), "/*"),
    (re.compile(r"^/tmp/[^/]+"), "/tmp/*"),
)


def collapse_path(path: str) -> str:
    """Fold high-cardinality path segments so one behaviour is one APD key."""
    for pattern, replacement in _HIGH_CARDINALITY:
        path = pattern.sub(replacement, path)
    return path


B = TypeVar("B", bound=BaseModel)


def _typed(model: type[B], /, **fields: Any) -> B:
    """A behaviour or detail from raw input; a value it cannot hold is bad input, not a stage bug."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        raise RejectedRecord(f"cannot make a {model.__name__} of this event: {problems}") from None


def enrich_sensor(registry: Registry, event: RawSensorEvent, source: SourceRef) -> list[EnrichedEvent]:
    who = attribute(registry, event.attribution)
    detail = event.detail
    common: dict[str, Any] = {
        "ts": event.ts,
        "deployment": who.deployment,
        "namespace": who.namespace,
        "pod": who.pod,
        "service_account": who.service_account,
        "revision": who.revision,
        "partial": event.kernel_losses > 0,
        "source": source,
    }
    process: dict[str, Any] = {"pid": event.pid, "comm": event.comm}
    if isinstance(detail, SyscallSetDetail):
        return [
            EnrichedEvent(
                event_id=f"{event.event_id}:{name}",
                surface=Surface.PROCESS,
                kind="syscall",
                behaviour=_typed(Syscall, name=name),
                detail=SyscallInfo(**process, syscall=name),
                **common,
            )
            for name in sorted(set(detail.syscalls))
        ]
    surface, behaviour, info = _sensor_behaviour(detail, process)
    return [
        EnrichedEvent(
            event_id=event.event_id,
            surface=surface,
            kind=detail.kind,
            behaviour=behaviour,
            detail=info,
            **common,
        )
    ]


def _sensor_behaviour(detail: Any, process: dict[str, Any]) -> tuple[Surface, Behaviour | None, EventDetail]:
    if isinstance(detail, ExecDetail):
        argv, _ = redact_argv(detail.argv)
        info = ExecInfo(**process, binary=detail.binary, argv=argv)
        return Surface.PROCESS, _typed(Exec, binary=detail.binary), info
    if isinstance(detail, ExitDetail):
        return Surface.PROCESS, None, ExitInfo(**process, exit_code=detail.exit_code)
    if isinstance(detail, FileOpenDetail):
        behaviour = _typed(File, path=collapse_path(detail.path))
        return Surface.FILE, behaviour, FileOpenInfo(**process, path=detail.path, flags=detail.flags)
    if isinstance(detail, ConnectDetail):
        peer = ConnectInfo(
            **process,
            kind=detail.kind,
            address=detail.address,
            port=detail.port,
            protocol=detail.protocol,
            dns_name=detail.dns_name,
            family=detail.family,
        )
        if detail.kind == "accept":
            return Surface.NETWORK, Ingress(port=detail.port, protocol=detail.protocol), peer
        host = detail.dns_name or detail.address
        return Surface.NETWORK, _typed(Egress, host=host, port=detail.port, protocol=detail.protocol), peer
    if isinstance(detail, DnsDetail):
        return Surface.NETWORK, _typed(Dns, name=detail.name.rstrip(".")), DnsInfo(**process, name=detail.name)
    if isinstance(detail, CapabilityDetail):
        capability = CapabilityInfo(**process, capability=detail.capability)
        return Surface.PROCESS, _typed(Capability, capability=detail.capability), capability
    raise RejectedRecord(f"sensor detail kind {getattr(detail, 'kind', '?')!r} has no enrichment")


# --- LLM and MCP events -------------------------------------------------------------------------


# Roles whose text is the agent owner's own instructions: never scanned (a defensive system
# prompt reads like an attack and would raise a signal on every call).
TRUSTED_ROLES = frozenset({"system", "developer"})
_ROLE_PREFIX = re.compile(r"^(system|developer|user|assistant|tool|model|function|ipython): ", re.I)
_EMBEDDED_TURN = re.compile(r"\n\s*(user|assistant|tool|human|ai)\s*:", re.I)


def untrusted_texts(event: RawLlmEvent) -> list[tuple[str, str]]:
    """(where, text) for everything that reaches the model from outside: user messages, tool
    results, retrieved documents, tool descriptions and tool arguments; not system or developer text."""
    found: list[tuple[str, str]] = []
    for text in event.input_messages:
        role = _ROLE_PREFIX.match(text)
        where = role.group(1).lower() if role else "input"
        # A "system:" line that carries further role turns is not one rendered system message but a
        # raw prompt someone wrote (legacy gen_ai.prompt): it is scanned like any other input.
        if where in TRUSTED_ROLES and not _EMBEDDED_TURN.search(text):
            continue
        found.append((where, text[role.end() :] if role else text))
    if event.operation == "execute_tool":
        found += [("tool_result", text) for text in event.output_messages]
    if event.tool_arguments:
        found += [("tool_arguments", text) for text in _strings(event.tool_arguments)]
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def scan_injection(
    guard: Detector, event: RawLlmEvent, agent: str | None, registry: Registry | None = None
) -> tuple[list[str], dict[str, Any] | None]:
    """Flags `prompt_injection:<rule>:<technique>` for what the model flags, and the score detail.
    With a registry, a text already flagged in this conversation (a chat re-sends its history on
    every turn) is not flagged again: once per conversation."""
    texts = untrusted_texts(event)
    if not texts:
        return [], None
    flags: dict[str, None] = {}
    best, where, obfuscations, repeated = 0.0, [], set[str](), 0
    conversation = None  # found only for a flagged text: most are not
    for origin, text in texts:
        verdict = guard.assess(text, agent)
        best = max(best, verdict.score)
        if verdict.flagged and registry is not None:
            conversation = conversation or _conversation(event)
            seen_key = f"injection:{agent}:{conversation}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"
            if registry.get(seen_key):
                repeated += 1
                continue
            registry[seen_key] = True
        if verdict.flagged:
            where.append(origin)
            obfuscations.update(verdict.obfuscations)
            flags.update(dict.fromkeys(f"prompt_injection:{r.name}:{r.technique}" for r in verdict.rules))
    detail = {
        "score": round(best, 4),
        "threshold": round(guard.threshold, 4),
        "flagged_in": sorted(set(where)),
        "obfuscations": sorted(obfuscations),
        "repeated_in_conversation": repeated,
    }
    return list(flags), detail


def _conversation(event: RawLlmEvent) -> str:
    """The conversation a call belongs to: the sender's id, else its first non-system message
    (every turn of a chat re-sends it), else the trace."""
    if event.conversation_id:
        return event.conversation_id
    first = next((t for t in event.input_messages if not t.lower().startswith(("system:", "developer:"))), None)
    if first is not None:
        return "first:" + hashlib.sha256(first.encode()).hexdigest()[:24]
    return f"trace:{event.trace_id or event.event_id}"


_default_guard: Detector | None = None


def default_guard() -> Detector:
    """The shipped model without an allowlist (the ingest app passes its configured one)."""
    global _default_guard
    if _default_guard is None:
        _default_guard = Detector(shipped_model())
    return _default_guard


def enrich_llm(
    registry: Registry,
    event: RawLlmEvent,
    source: SourceRef,
    capture_content: bool = True,
    guard: Detector | None = None,
) -> list[EnrichedEvent]:
    who = attribute(registry, event.attribution)
    event = canonical_tool(registry, who.deployment, event)
    event = trace_caller(registry, who.deployment, event)
    flags, injection = scan_injection(guard or default_guard(), event, who.deployment, registry)
    inputs, outputs, secrets = [], [], set()
    for text in event.input_messages:
        clean, kinds = redact_text(text)
        inputs.append(clean)
        secrets.update(kinds)
    for text in event.output_messages:
        clean, kinds = redact_text(text)
        outputs.append(clean)
        secrets.update(kinds)
    arguments, kinds = redact_value(event.tool_arguments) if event.tool_arguments else (None, [])
    secrets.update(kinds)
    if secrets:
        flags.append("secrets_redacted:" + ",".join(sorted(secrets)))
    flags += multi_agent_flags(registry, guard or default_guard(), who.deployment, event, bool(injection_flags(flags)))
    detail = LlmCallInfo(
        kind=event.operation,
        operation=event.operation,
        provider=event.provider,
        request_model=event.request_model,
        response_model=event.response_model,
        tool_name=event.tool_name,
        mcp_server=event.mcp_server,
        tool_call_id=event.tool_call_id,
        tools=event.tools,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        caller_agent=event.caller_agent,
        trace_id=event.trace_id,
        span_id=event.span_id,
        parent_span_id=event.parent_span_id,
        links=event.links,
        agent_name=event.agent_name,
        endpoint=event.endpoint,
        content_of=event.content_of,
        refused=event.refused,
        prompt_injection=injection,
    )
    if capture_content:
        detail.input_messages, detail.output_messages, detail.tool_arguments = inputs, outputs, arguments
    surface, behaviour = _llm_behaviour(event)
    edge = _edge_event(registry, who, event, detail, source)
    return [
        *edge,
        EnrichedEvent(
            event_id=event.event_id,
            ts=event.ts,
            deployment=who.deployment,
            namespace=who.namespace,
            pod=who.pod,
            service_account=who.service_account,
            revision=who.revision,
            surface=surface,
            kind=event.operation,
            behaviour=behaviour,
            detail=detail,
            flags=flags,
            source=source,
        ),
    ]


def injection_flags(flags: list[str]) -> list[str]:
    return [f for f in flags if f.startswith("prompt_injection:")]


def multi_agent_flags(
    registry: Registry, guard: Detector, deployment: str, event: RawLlmEvent, injected: bool
) -> list[str]:
    """A hand-off is learnt, not alarmed: only a tool call in a trace where another agent's
    input or model output carried an injection is flagged `multi_agent:<caller>` (a signal
    whatever the window says). The trace is marked when this record is the injected one."""
    if not event.trace_id:
        return []
    key = f"trace-injection:{event.trace_id}"
    if injected or (event.operation == "chat" and _output_injected(guard, event, deployment)):
        if registry.get(key) is None:
            registry[key] = deployment
        return []
    source = registry.get(key)
    if event.operation == "execute_tool" and source and source != deployment:
        return [f"multi_agent:{source}"]
    return []


def _output_injected(guard: Detector, event: RawLlmEvent, deployment: str) -> bool:
    """A model output that carries an injection: harmless to this agent, dangerous to the next."""
    return any(guard.assess(text, deployment).flagged for text in event.output_messages)


def _edge_event(
    registry: Registry, who: Identity, event: RawLlmEvent, detail: LlmCallInfo, source: SourceRef
) -> list[EnrichedEvent]:
    """The caller -> this agent edge, once per trace, for records other than invoke_agent (which
    carries the edge as its own behaviour): the APD learns it in the window, a new one after is a
    deviation."""
    if not event.caller_agent or event.operation == "invoke_agent" or event.caller_agent == who.deployment:
        return []
    if event.trace_id:
        key = f"edge:{event.trace_id}:{who.deployment}:{event.caller_agent}"
        if registry.get(key):
            return []
        registry[key] = True
    return [
        EnrichedEvent(
            event_id=f"{event.event_id}:agent-edge",
            ts=event.ts,
            deployment=who.deployment,
            namespace=who.namespace,
            pod=who.pod,
            service_account=who.service_account,
            surface=Surface.MULTI_AGENT,
            kind="invoke_agent",
            behaviour=_typed(AgentEdge, caller=event.caller_agent),
            detail=detail.model_copy(update={"kind": "invoke_agent", "operation": "invoke_agent"}),
            flags=[],
            source=source,
        )
    ]


def canonical_tool(registry: Registry, deployment: str, event: RawLlmEvent) -> RawLlmEvent:
    """One identity per tool whatever the source: the server a tools/list from this Deployment
    advertised it on (the gateway names it from the declared config or initialize serverInfo).
    An OTLP or mcp SDK span that names only the tool then gets the same `server/tool` key as the
    gateway's record; a tool no server advertised stays a local function tool."""
    if event.operation == "tools_list" and event.mcp_server:
        for tool in event.tools:
            registry[f"tool-server:{deployment}:{tool}"] = event.mcp_server
        return event
    if event.operation == "execute_tool" and event.tool_name and not event.mcp_server:
        server = registry.get(f"tool-server:{deployment}:{event.tool_name}")
        if server:
            return event.model_copy(update={"mcp_server": server})
    return event


TRACE_SPANS = 64  # span -> Deployment entries kept per trace (the agents' spans, not every span)


def trace_caller(registry: Registry, deployment: str, event: RawLlmEvent) -> RawLlmEvent:
    """Multi-agent from W3C trace context: the Deployment whose span is this call's parent, else
    the Deployment that opened the trace, when it is another one, is the caller. A caller the
    sender declared is kept. One registry entry per trace: its opener and its first spans."""
    if not event.trace_id:
        return event
    key = f"trace:{event.trace_id}"
    stored = registry.get(key)
    known = stored or {"opener": deployment, "spans": {}}
    spans: dict[str, str] = known["spans"]
    if event.span_id and event.span_id not in spans and len(spans) < TRACE_SPANS:
        spans[event.span_id] = deployment
        stored = None  # changed: write it back
    if stored is None:
        registry[key] = known
    opener: str = known["opener"]
    if event.caller_agent or event.content_of:
        return event
    parent = spans.get(event.parent_span_id) if event.parent_span_id else None
    caller = parent if parent and parent != deployment else opener if opener != deployment else None
    return event.model_copy(update={"caller_agent": caller}) if caller else event


def _llm_behaviour(event: RawLlmEvent) -> tuple[Surface, Behaviour | None]:
    if event.content_of:
        # The content of a call sent apart from it (GenAI events as log records): scanned, but the
        # call itself is counted once, from its span.
        return Surface.INPUT, None
    if event.operation == "chat":
        model = event.response_model or event.request_model or "unknown"
        return Surface.INPUT, _typed(LlmCall, provider=event.provider or "unknown", model=model)
    if event.operation == "execute_tool":
        if not event.tool_name:
            raise RejectedRecord("execute_tool event without tool_name: the call cannot be profiled; fix the sender")
        surface = Surface.MULTI_AGENT if event.caller_agent else Surface.TOOL
        return surface, _typed(ToolCall, server=event.mcp_server or "local", name=event.tool_name)
    if event.operation == "invoke_agent":
        edge = _typed(AgentEdge, caller=event.caller_agent) if event.caller_agent else None
        return Surface.MULTI_AGENT, edge
    return Surface.TOOL, None  # initialize / tools_list: registrations the AI-BOM records


# --- Kubernetes audit events --------------------------------------------------------------------

_SA_USER = re.compile(r"^system:serviceaccount:([^:]+):([^:]+)$")


def enrich_audit(registry: Registry, record: K8sAuditEvent, source: SourceRef) -> list[EnrichedEvent]:
    """An API call made with an agent's ServiceAccount becomes an identity-surface behaviour."""
    event = record.event
    if event.get("apiVersion") != "audit.k8s.io/v1" or event.get("kind") != "Event":
        raise RejectedRecord("audit record is not an audit.k8s.io/v1 Event")
    if event.get("stage") != "ResponseComplete":
        return []  # one record per request: the other stages repeat it
    # Checked before parking: a parked event that cannot be timed would be lost on release.
    ts = _parse_time(event.get("requestReceivedTimestamp") or event.get("stageTimestamp"))
    # `kubectl --as` records the real caller as impersonatedUser; that identity exercised the permissions.
    actor = event.get("impersonatedUser") or event.get("user") or {}
    match = _SA_USER.match(actor.get("username", ""))
    if not match:
        return []
    sa_namespace, sa_name = match.groups()
    deployments = registry.get(f"sa:{sa_namespace}/{sa_name}") or []
    if not deployments:
        park(registry, f"{sa_namespace}/{sa_name}", record, source)
        return []
    ref = event.get("objectRef") or {}
    group = ref.get("apiGroup") or "core"
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    scope = ref.get("namespace") or "cluster"
    code = int((event.get("responseStatus") or {}).get("code") or 0)
    behaviour = _typed(K8sApiCall, verb=event.get("verb"), group=group, resource=resource, scope=scope)
    return [
        EnrichedEvent(
            event_id=f"{event.get('auditID')}:{dep}",
            ts=ts,
            deployment=dep,
            namespace=sa_namespace,
            service_account=sa_name,
            surface=Surface.IDENTITY,
            kind="k8s_api",
            behaviour=behaviour,
            flags=["denied"] if code == 403 else [],
            detail=K8sApiInfo(
                verb=behaviour.verb,
                api_group=group,
                resource=resource,
                namespace=scope,
                name=ref.get("name"),
                code=code,
                user_agent=event.get("userAgent"),
                shared_service_account=len(deployments) > 1,
            ),
            source=source,
        )
        for dep in deployments
    ]


MAX_PARKED_PER_SA = 1000
# The parked events of a ServiceAccount are one table value, one changelog record: it must stay
# well under the broker's 1 MB record limit, or every later write of it fails.
MAX_PARKED_BYTES_PER_SA = 512_000


def park(registry: Registry, service_account: str, record: K8sAuditEvent, source: SourceRef) -> None:
    """Hold an audit event of a ServiceAccount no agent is known to use yet.

    Audit logs and pod watches race; the event is replayed once an agent with that
    ServiceAccount shows up, so ordering between topics loses nothing. The held events are
    capped (count and bytes): the oldest make room and are counted in `parked-dropped:<sa>`.
    """
    item: dict[str, Any] = {"record": record.model_dump(mode="json"), "source": source.model_dump()}
    size = len(json.dumps(item, default=str))
    if size > MAX_PARKED_BYTES_PER_SA:
        raise RejectedRecord(
            f"audit event of ServiceAccount {service_account} is {size} bytes, over the "
            f"{MAX_PARKED_BYTES_PER_SA} bytes ingest holds for a ServiceAccount no agent uses yet"
        )
    key = f"parked:{service_account}"
    item["bytes"] = size
    parked = [*(registry.get(key) or []), item]
    sizes = [int(p.get("bytes") or len(json.dumps(p, default=str))) for p in parked]
    dropped = 0
    while len(parked) > MAX_PARKED_PER_SA or sum(sizes) > MAX_PARKED_BYTES_PER_SA:
        parked.pop(0)
        sizes.pop(0)
        dropped += 1
    if dropped:
        drop_key = f"parked-dropped:{service_account}"
        registry[drop_key] = int(registry.get(drop_key) or 0) + dropped
        log.warning(
            "dropped the %d oldest parked audit events of ServiceAccount %s (cap %d events, %d bytes)",
            dropped,
            service_account,
            MAX_PARKED_PER_SA,
            MAX_PARKED_BYTES_PER_SA,
        )
    registry[key] = parked


def learn_service_account(registry: Registry, identity: Identity) -> list[EnrichedEvent]:
    """Remember which Deployments run as a ServiceAccount; release its parked audit events."""
    if not identity.service_account:
        return []
    sa = f"{identity.namespace}/{identity.service_account}"
    known = list(registry.get(f"sa:{sa}") or [])
    if identity.deployment in known:
        return []
    registry[f"sa:{sa}"] = sorted([*known, identity.deployment])
    parked = registry.get(f"parked:{sa}") or []
    if not parked:
        return []
    registry[f"parked:{sa}"] = []
    released: list[EnrichedEvent] = []
    for item in parked:
        released.extend(
            enrich_audit(
                registry, K8sAuditEvent.model_validate(item["record"]), SourceRef.model_validate(item["source"])
            )
        )
    return released


def _parse_time(value: str | None) -> datetime:
    if not value:
        raise RejectedRecord("audit event without requestReceivedTimestamp")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RejectedRecord(f"audit event time {value!r} is not an RFC 3339 time") from None
    if ts.tzinfo is None:
        raise RejectedRecord(f"audit event time {value!r} has no time zone; the API server writes RFC 3339 with Z")
    return ts


def _event_id(source: SourceRef) -> str:
    return hashlib.sha1(f"{source.topic}:{source.partition}:{source.offset}".encode()).hexdigest()[:20]
