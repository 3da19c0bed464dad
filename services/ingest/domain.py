"""Ingest's pure logic: attribute raw records to an agent and turn them into enriched events.

No Kafka, no store: the Faust app in `app.py` feeds records in and publishes what comes out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
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
    }
    registry[f"dep:{dep}"] = state
    changed = bool(previous) and not _same_revision(previous, state)
    if event.type == "DELETED" or (previous and not changed and previous.get("autonomy") == state["autonomy"]):
        return []
    detail = {
        **{k: v for k, v in state.items() if k != "image_digests"},
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


def scan_injection(guard: Detector, event: RawLlmEvent, agent: str | None) -> tuple[list[str], dict[str, Any] | None]:
    """Flags `prompt_injection:<rule>:<technique>` for what the model flags, and the score detail."""
    texts = untrusted_texts(event)
    if not texts:
        return [], None
    flags: dict[str, None] = {}
    best, where, obfuscations = 0.0, [], set[str]()
    for origin, text in texts:
        verdict = guard.assess(text, agent)
        best = max(best, verdict.score)
        if verdict.flagged:
            where.append(origin)
            obfuscations.update(verdict.obfuscations)
            flags.update(dict.fromkeys(f"prompt_injection:{r.name}:{r.technique}" for r in verdict.rules))
    detail = {
        "score": round(best, 4),
        "threshold": round(guard.threshold, 4),
        "flagged_in": sorted(set(where)),
        "obfuscations": sorted(obfuscations),
    }
    return list(flags), detail


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
    flags, injection = scan_injection(guard or default_guard(), event, who.deployment)
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
    if event.caller_agent and event.caller_agent != who.deployment:
        flags.append(f"multi_agent:{event.caller_agent}")
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
        prompt_injection=injection,
    )
    if capture_content:
        detail.input_messages, detail.output_messages, detail.tool_arguments = inputs, outputs, arguments
    surface, behaviour = _llm_behaviour(event)
    return [
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
        )
    ]


def _llm_behaviour(event: RawLlmEvent) -> tuple[Surface, Behaviour | None]:
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
