"""Ingest's pure logic: attribute raw records to an agent and turn them into enriched events.

No Kafka, no store: the Faust app in `app.py` feeds records in and publishes what comes out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from runward.core.codec import RejectedRecord
from runward.core.config import AUTONOMY_ANNOTATION
from runward.core.contracts import (
    Attribution,
    CapabilityDetail,
    ConnectDetail,
    DnsDetail,
    EnrichedEvent,
    ExecDetail,
    ExitDetail,
    FileOpenDetail,
    K8sAuditEvent,
    K8sObjectEvent,
    RawLlmEvent,
    RawSensorEvent,
    SourceRef,
    Surface,
    SyscallSetDetail,
    deployment_id,
)
from runward.core.redaction import redact_argv, redact_text, redact_value
from services.ingest import prompt_guard


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


# --- Kubernetes objects ---------------------------------------------------------------------

_POD_TEMPLATE_HASH = re.compile(r"-[a-z0-9]{5,10}$")


def apply_k8s_object(registry: Registry, event: K8sObjectEvent, ts: datetime, source: SourceRef) -> list[EnrichedEvent]:
    """Learn ownership from Pods/ReplicaSets; turn Deployment spec changes into events."""
    obj = event.object
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name")
    if not name or kind not in {"Pod", "ReplicaSet", "Deployment"}:
        raise RejectedRecord(
            f"k8s object without metadata.name or of unsupported kind {kind!r}; "
            "send Pod, ReplicaSet or Deployment objects as the API server returns them"
        )
    if kind == "ReplicaSet":
        owner = _controller(meta, "Deployment")
        if owner:
            registry[f"rs:{namespace}/{name}"] = owner
        return []
    if kind == "Pod":
        deployment = _pod_deployment(registry, namespace, meta)
        if deployment is None:
            return []  # not an agent Deployment's pod (a Job, a bare pod): nothing to attribute
        spec = obj.get("spec") or {}
        identity = {
            "deployment": deployment,
            "namespace": namespace,
            "pod": name,
            "service_account": spec.get("serviceAccountName") or "default",
        }
        released = learn_service_account(registry, Identity(deployment, namespace, name, identity["service_account"]))
        if meta.get("uid"):
            registry[f"pod:{meta['uid']}"] = identity
        for status in (obj.get("status") or {}).get("containerStatuses") or []:
            container_id = (status.get("containerID") or "").split("://")[-1]
            if container_id:
                registry[f"cid:{container_id}"] = identity
        return released
    # Deployment
    dep = deployment_id(namespace, name)
    previous = registry.get(f"dep:{dep}") or {}
    generation = int(meta.get("generation") or 0)
    template = (obj.get("spec") or {}).get("template") or {}
    pod_spec = template.get("spec") or {}
    annotations = meta.get("annotations") or {}
    state = {
        "generation": generation,
        "autonomy": annotations.get(AUTONOMY_ANNOTATION, "high"),
        "service_account": pod_spec.get("serviceAccountName") or "default",
        "images": sorted(c.get("image", "") for c in pod_spec.get("containers") or []),
    }
    registry[f"dep:{dep}"] = state
    changed = bool(previous) and generation > int(previous.get("generation", 0))
    if event.type == "DELETED" or (previous and not changed):
        return []
    return [
        EnrichedEvent(
            event_id=_event_id(source),
            ts=ts,
            deployment=dep,
            namespace=namespace,
            service_account=state["service_account"],
            surface=Surface.DEPLOYMENT,
            kind="deployment_spec",
            detail={**state, "changed": changed, "previous_generation": previous.get("generation")},
            source=source,
        )
    ]


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
        return Identity(attribution.deployment, namespace, attribution.pod, attribution.service_account)
    for key in (
        f"pod:{attribution.pod_uid}" if attribution.pod_uid else None,
        f"cid:{attribution.container_id}" if attribution.container_id else None,
    ):
        known = registry.get(key) if key else None
        if known:
            return Identity(known["deployment"], known["namespace"], known["pod"], known["service_account"])
    raise RejectedRecord(
        "cannot attribute event to a Deployment: no pod known for "
        f"pod_uid={attribution.pod_uid!r} container_id={attribution.container_id!r}; "
        "publish the Pod and ReplicaSet objects to runward.raw.k8s or set attribution.deployment"
    )


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


def enrich_sensor(registry: Registry, event: RawSensorEvent, source: SourceRef) -> list[EnrichedEvent]:
    who = attribute(registry, event.attribution)
    detail = event.detail
    common: dict[str, Any] = {
        "ts": event.ts,
        "deployment": who.deployment,
        "namespace": who.namespace,
        "pod": who.pod,
        "service_account": who.service_account,
        "partial": event.kernel_losses > 0,
        "source": source,
    }
    base = {"pid": event.pid, "comm": event.comm}
    if isinstance(detail, SyscallSetDetail):
        return [
            EnrichedEvent(
                event_id=f"{event.event_id}:{name}",
                surface=Surface.PROCESS,
                kind="syscall",
                behaviour=f"syscall:{name}",
                category="syscalls",
                detail={**base, "syscall": name},
                **common,
            )
            for name in sorted(set(detail.syscalls))
        ]
    surface, category, behaviour, extra = _sensor_behaviour(detail)
    return [
        EnrichedEvent(
            event_id=event.event_id,
            surface=surface,
            kind=detail.kind,
            behaviour=behaviour,
            category=category,
            detail={**base, **extra},
            **common,
        )
    ]


def _sensor_behaviour(detail: Any) -> tuple[Surface, str | None, str | None, dict[str, Any]]:
    if isinstance(detail, ExecDetail):
        argv, _ = redact_argv(detail.argv)
        return Surface.PROCESS, "exec", f"exec:{detail.binary}", {"binary": detail.binary, "argv": argv}
    if isinstance(detail, ExitDetail):
        return Surface.PROCESS, None, None, {"exit_code": detail.exit_code}
    if isinstance(detail, FileOpenDetail):
        path = collapse_path(detail.path)
        return Surface.FILE, "file", f"file:{path}", {"path": detail.path, "flags": detail.flags}
    if isinstance(detail, ConnectDetail):
        peer = {
            "address": detail.address,
            "port": detail.port,
            "protocol": detail.protocol,
            "dns_name": detail.dns_name,
            "family": detail.family,
        }
        if detail.kind == "accept":
            return Surface.NETWORK, "ingress", f"ingress:{detail.port}/{detail.protocol}", peer
        host = detail.dns_name or detail.address
        return Surface.NETWORK, "egress", f"egress:{host}:{detail.port}/{detail.protocol}", peer
    if isinstance(detail, DnsDetail):
        return Surface.NETWORK, "dns", f"dns:{detail.name.rstrip('.')}", {"name": detail.name}
    if isinstance(detail, CapabilityDetail):
        return Surface.PROCESS, "capabilities", f"cap:{detail.capability}", {"capability": detail.capability}
    raise RejectedRecord(f"sensor detail kind {getattr(detail, 'kind', '?')!r} has no enrichment")


# --- LLM and MCP events -------------------------------------------------------------------------


def enrich_llm(
    registry: Registry, event: RawLlmEvent, source: SourceRef, capture_content: bool = True
) -> list[EnrichedEvent]:
    who = attribute(registry, event.attribution)
    flags: list[str] = []
    inputs, outputs, secrets = [], [], set()
    for text in event.input_messages:
        flags.extend(f"prompt_injection:{r.name}:{r.technique}" for r in prompt_guard.findings(text))
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
    if event.caller_agent and event.caller_agent != who.deployment:
        flags.append(f"multi_agent:{event.caller_agent}")
    detail: dict[str, Any] = {
        "operation": event.operation,
        "provider": event.provider,
        "request_model": event.request_model,
        "response_model": event.response_model,
        "tool_name": event.tool_name,
        "mcp_server": event.mcp_server,
        "tool_call_id": event.tool_call_id,
        "tools": event.tools,
        "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens,
        "caller_agent": event.caller_agent,
    }
    if capture_content:
        detail.update(input_messages=inputs, output_messages=outputs, tool_arguments=arguments)
    surface, category, behaviour = Surface.INPUT, None, None
    if event.operation == "chat":
        model = event.response_model or event.request_model or "unknown"
        category, behaviour = "llm", f"llm:{event.provider or 'unknown'}/{model}"
    elif event.operation == "execute_tool":
        surface = Surface.MULTI_AGENT if event.caller_agent else Surface.TOOL
        category, behaviour = "mcp_tools", f"tool:{event.mcp_server or 'local'}/{event.tool_name}"
    elif event.operation == "invoke_agent":
        surface = Surface.MULTI_AGENT
    else:
        surface = Surface.TOOL  # initialize / tools_list: registrations the AI-BOM records
    return [
        EnrichedEvent(
            event_id=event.event_id,
            ts=event.ts,
            deployment=who.deployment,
            namespace=who.namespace,
            pod=who.pod,
            service_account=who.service_account,
            surface=surface,
            kind=event.operation,
            behaviour=behaviour,
            category=category,
            detail=detail,
            flags=flags,
            source=source,
        )
    ]


# --- Kubernetes audit events --------------------------------------------------------------------

_SA_USER = re.compile(r"^system:serviceaccount:([^:]+):([^:]+)$")


def enrich_audit(registry: Registry, record: K8sAuditEvent, source: SourceRef) -> list[EnrichedEvent]:
    """An API call made with an agent's ServiceAccount becomes an identity-surface behaviour."""
    event = record.event
    if event.get("apiVersion") != "audit.k8s.io/v1" or event.get("kind") != "Event":
        raise RejectedRecord("audit record is not an audit.k8s.io/v1 Event")
    if event.get("stage") != "ResponseComplete":
        return []  # one record per request: the other stages repeat it
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
    behaviour = f"k8s-api:{event.get('verb')} {group}/{resource} in {scope}"
    ts = _parse_time(event.get("requestReceivedTimestamp") or event.get("stageTimestamp"))
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
            category="k8s_api",
            flags=["denied"] if code == 403 else [],
            detail={
                "verb": event.get("verb"),
                "api_group": group,
                "resource": resource,
                "namespace": scope,
                "name": ref.get("name"),
                "code": code,
                "user_agent": event.get("userAgent"),
                "shared_service_account": len(deployments) > 1,
            },
            source=source,
        )
        for dep in deployments
    ]


MAX_PARKED_PER_SA = 1000


def park(registry: Registry, service_account: str, record: K8sAuditEvent, source: SourceRef) -> None:
    """Hold an audit event of a ServiceAccount no agent is known to use yet.

    Audit logs and pod watches race; the event is replayed once an agent with that
    ServiceAccount shows up, so ordering between topics loses nothing.
    """
    key = f"parked:{service_account}"
    parked = list(registry.get(key) or [])
    if len(parked) >= MAX_PARKED_PER_SA:
        raise RejectedRecord(
            f"more than {MAX_PARKED_PER_SA} audit events of ServiceAccount {service_account} wait for an agent "
            "that uses it; if it is not an agent's ServiceAccount, filter it out of the audit feed"
        )
    parked.append({"record": record.model_dump(mode="json"), "source": source.model_dump()})
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
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _event_id(source: SourceRef) -> str:
    return hashlib.sha1(f"{source.topic}:{source.partition}:{source.offset}".encode()).hexdigest()[:20]
