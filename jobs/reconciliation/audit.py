"""Used side for Kubernetes: `audit.k8s.io/v1` events → the requests one identity made.

Attribution follows audit2rbac: when a request was impersonated, the authorizer judged
the impersonated user, so that is who exercised the permission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.reconciliation.matching import non_resource_matches
from runward.core.contracts.raw import K8sAuditEvent
from runward.core.contracts.reconciliation import (
    SA_USER_PREFIX,
    DeniedK8sAttempt,
    K8sRequest,
    ObservedK8sRequest,
)

AUDIT_API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})

# 401 never reaches authorization; 429 comes from priority-and-fairness, which runs before
# the authorizer in the API server's handler chain. Neither says anything about RBAC.
NOT_AUTHORIZATION_EVIDENCE = frozenset({401, 429})
DENIED = 403

# audit2rbac treats these as covered by the default system:discovery ClusterRole bound to
# every authenticated user: not worth a grant, not a signal.
DISCOVERY_PATHS = ("/healthz", "/version", "/swagger*", "/api*")

# RBAC cannot restrict these by resourceNames: the authorizer sees no name for a POST to a
# collection or a deletecollection, even though the audit event records the object's name.
_UNNAMED_VERBS = frozenset({"deletecollection"})

AuditInput = Mapping[str, Any] | K8sAuditEvent


# A report lists sample IDs to look up, not every event of a chatty agent.
MAX_EVIDENCE_IDS = 20


@dataclass
class _Fold:
    count: int = 0
    codes: set[int] = field(default_factory=set)
    audit_ids: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, code: int, audit_id: str, ts: datetime | None) -> None:
        self.count += 1
        self.codes.add(code)
        if audit_id and len(self.audit_ids) < MAX_EVIDENCE_IDS:
            self.audit_ids.append(audit_id)
        if ts is not None:
            self.first = ts if self.first is None else min(self.first, ts)
            self.last = ts if self.last is None else max(self.last, ts)


@dataclass
class AuditExtraction:
    used: dict[K8sRequest, _Fold] = field(default_factory=dict)
    denied: dict[K8sRequest, _Fold] = field(default_factory=dict)
    considered: int = 0
    skipped: int = 0
    window_start: datetime | None = None
    window_end: datetime | None = None

    def observed(self) -> list[ObservedK8sRequest]:
        return [_observed(r, f) for r, f in _sorted(self.used)]

    def denied_attempts(self, covered: dict[K8sRequest, bool]) -> list[DeniedK8sAttempt]:
        return [
            DeniedK8sAttempt(**_observed(r, f).model_dump(), covered_by_current_grant=covered.get(r, False))
            for r, f in _sorted(self.denied)
        ]


def _sorted(folds: dict[K8sRequest, _Fold]) -> list[tuple[K8sRequest, _Fold]]:
    return sorted(folds.items(), key=lambda kv: kv[0].label)


def _observed(request: K8sRequest, fold: _Fold) -> ObservedK8sRequest:
    return ObservedK8sRequest(
        request=request,
        count=fold.count,
        status_codes=sorted(fold.codes),
        audit_ids=fold.audit_ids,
        first_seen=fold.first,
        last_seen=fold.last,
    )


def event_dict(event: AuditInput) -> Mapping[str, Any]:
    return event.event if isinstance(event, K8sAuditEvent) else event


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def event_time(event: Mapping[str, Any]) -> datetime | None:
    # v1 events carry stageTimestamp; older producers (and audit2rbac's demo) only `timestamp`.
    for key in ("stageTimestamp", "requestReceivedTimestamp", "timestamp"):
        if (ts := parse_timestamp(event.get(key))) is not None:
            return ts
    return parse_timestamp((event.get("metadata") or {}).get("creationTimestamp"))


def effective_username(event: Mapping[str, Any]) -> str:
    impersonated = event.get("impersonatedUser") or {}
    if impersonated.get("username"):
        return str(impersonated["username"])
    return str((event.get("user") or {}).get("username", ""))


def status_code(event: Mapping[str, Any]) -> int:
    # A completed response without a status is a success at Metadata level for some
    # old API servers; treat it as authorised rather than dropping the evidence.
    return int((event.get("responseStatus") or {}).get("code", 200))


def request_of(event: Mapping[str, Any]) -> K8sRequest:
    verb = str(event.get("verb", ""))
    ref = event.get("objectRef")
    if not ref:
        path = str(event.get("requestURI", "")).split("?", 1)[0]
        return K8sRequest(verb=verb, non_resource_path=path)
    subresource = str(ref.get("subresource") or "")
    name = ref.get("name") or None
    if verb in _UNNAMED_VERBS or (verb == "create" and not subresource):
        name = None
    return K8sRequest(
        verb=verb,
        api_group=str(ref.get("apiGroup") or ""),
        resource=str(ref.get("resource") or ""),
        subresource=subresource,
        namespace=ref.get("namespace") or None,
        name=name,
    )


def impersonation_requests(event: Mapping[str, Any]) -> list[K8sRequest]:
    """The `impersonate` permissions the *caller* exercised to act as someone else.

    Groups the API server adds by itself (system:authenticated, the SA groups) are not
    impersonated explicitly, so they are not counted.
    """
    target = event.get("impersonatedUser") or {}
    username = str(target.get("username", ""))
    if not username:
        return []
    if username.startswith(SA_USER_PREFIX):
        namespace, _, name = username.removeprefix(SA_USER_PREFIX).partition(":")
        requests = [K8sRequest(verb="impersonate", resource="serviceaccounts", namespace=namespace, name=name)]
        implicit = {"system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"}
    else:
        requests = [K8sRequest(verb="impersonate", resource="users", name=username)]
        implicit = {"system:authenticated"}
    for group in target.get("groups") or []:
        if group not in implicit:
            requests.append(K8sRequest(verb="impersonate", resource="groups", name=str(group)))
    return requests


def extract_requests(
    events: Iterable[AuditInput],
    username: str,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> AuditExtraction:
    """Fold ResponseComplete events (deduplicated by auditID) into distinct requests.

    The observation window defaults to the span of every event in the log, not only the
    identity's own: an agent that stayed quiet for most of the window is itself a finding.
    """
    out = AuditExtraction()
    seen: set[str] = set()
    for raw in events:
        event = event_dict(raw)
        if event.get("apiVersion") not in AUDIT_API_VERSIONS or event.get("stage") != "ResponseComplete":
            continue
        audit_id = str(event.get("auditID", ""))
        if audit_id:
            if audit_id in seen:
                continue
            seen.add(audit_id)
        ts = event_time(event)
        if ts is not None and ((window_start and ts < window_start) or (window_end and ts > window_end)):
            continue
        if ts is not None:
            out.window_start = ts if out.window_start is None else min(out.window_start, ts)
            out.window_end = ts if out.window_end is None else max(out.window_end, ts)
        _fold_event(out, event, username, audit_id, ts)
    if window_start is not None:
        out.window_start = window_start
    if window_end is not None:
        out.window_end = window_end
    return out


def _fold_event(
    out: AuditExtraction, event: Mapping[str, Any], username: str, audit_id: str, ts: datetime | None
) -> None:
    caller = str((event.get("user") or {}).get("username", ""))
    if caller == username and event.get("impersonatedUser"):
        # Impersonation was authorised before the request itself was judged.
        for request in impersonation_requests(event):
            out.used.setdefault(request, _Fold()).add(status_code(event), audit_id, ts)
    if effective_username(event) != username:
        return
    out.considered += 1
    code = status_code(event)
    if code in NOT_AUTHORIZATION_EVIDENCE:
        out.skipped += 1
        return
    target = out.denied if code == DENIED else out.used
    target.setdefault(request_of(event), _Fold()).add(code, audit_id, ts)


def is_discovery(request: K8sRequest) -> bool:
    path = request.non_resource_path
    if path is None or request.verb != "get":
        return False
    return any(non_resource_matches(p, path) for p in DISCOVERY_PATHS)
