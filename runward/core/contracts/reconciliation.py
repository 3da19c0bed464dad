"""Report models of the declared-vs-observed reconciliation.

Permissions and requests are frozen (hashable) so the domain code can use them as
dictionary keys while folding thousands of audit events into a few distinct calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runward.core.contracts.common import DeploymentId, Record

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_PLAIN = ConfigDict(extra="forbid")

SA_USER_PREFIX = "system:serviceaccount:"


class _Usage(Protocol):
    used: bool


def _counts(permissions: Sequence[_Usage]) -> tuple[int, int, int]:
    used = sum(1 for p in permissions if p.used)
    return len(permissions), used, len(permissions) - used


class ServiceAccountRef(BaseModel):
    model_config = _FROZEN

    namespace: str
    name: str

    @classmethod
    def parse(cls, value: str) -> ServiceAccountRef:
        """Accepts `ns:name`, `ns/name` and the username `system:serviceaccount:ns:name`."""
        text = value.removeprefix(SA_USER_PREFIX)
        for sep in (":", "/"):
            namespace, found, name = text.partition(sep)
            if found and namespace and name and sep not in name:
                return cls(namespace=namespace, name=name)
        raise ValueError(f"service account {value!r} must be 'namespace:name' or 'namespace/name'")

    @property
    def username(self) -> str:
        return f"{SA_USER_PREFIX}{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        # The groups the API server's token authenticator adds to every ServiceAccount.
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


# --------------------------------------------------------------------------- Kubernetes


class K8sPermission(BaseModel):
    """One atomic RBAC grant. `namespace=None` means cluster-wide (a ClusterRoleBinding).

    A `*` in any field is kept as-is: one granted permission that matches anything there,
    so a wildcard rule is reported as the single over-broad grant it is.
    """

    model_config = _FROZEN

    verb: str
    api_group: str = ""
    resource: str = Field(default="", description="`resource` or `resource/subresource`")
    namespace: str | None = None
    resource_name: str | None = None
    non_resource_url: str | None = None

    @property
    def is_wildcard(self) -> bool:
        if any(f == "*" or f.startswith("*/") for f in (self.verb, self.api_group, self.resource)):
            return True
        return bool(self.non_resource_url and self.non_resource_url.endswith("*"))

    @property
    def scope(self) -> str:
        return "cluster-wide" if self.namespace is None else f"namespace {self.namespace}"

    @property
    def rule_text(self) -> str:
        if self.non_resource_url is not None:
            return f"{self.verb} {self.non_resource_url}"
        name = f" name={self.resource_name}" if self.resource_name else ""
        return f"{self.verb} {self.api_group or 'core'}:{self.resource}{name}"

    @property
    def label(self) -> str:
        return f"{self.rule_text} ({self.scope})"


class K8sRequest(BaseModel):
    """One distinct API request as the authorizer saw it. `namespace=None`: cluster-scoped."""

    model_config = _FROZEN

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None
    non_resource_path: str | None = None

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def label(self) -> str:
        if self.non_resource_path is not None:
            return f"{self.verb} {self.non_resource_path}"
        group = self.api_group or "core"
        name = f" name={self.name}" if self.name else ""
        where = "cluster-scope" if self.namespace is None else f"ns {self.namespace}"
        return f"{self.verb} {group}:{self.combined_resource}{name} ({where})"


class GrantSource(BaseModel):
    """The binding + role + subject chain a permission came through, for the fix-it ticket."""

    model_config = _FROZEN

    binding_kind: Literal["RoleBinding", "ClusterRoleBinding"]
    binding_name: str
    binding_namespace: str | None = None
    role_kind: Literal["Role", "ClusterRole"]
    role_name: str
    subject: str = Field(description="`Kind:name` of the matching subject, e.g. `Group:system:authenticated`")

    @property
    def label(self) -> str:
        where = f"{self.binding_namespace}/" if self.binding_namespace else ""
        role = f"{self.role_kind} {self.role_name}"
        return f"{self.binding_kind} {where}{self.binding_name} → {role} ({self.subject})"


class ObservedK8sRequest(BaseModel):
    model_config = _PLAIN

    request: K8sRequest
    count: int
    status_codes: list[int]
    audit_ids: list[str] = Field(description="up to 20 sample auditIDs; `count` has the total")
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class DeniedK8sAttempt(ObservedK8sRequest):
    covered_by_current_grant: bool = Field(
        description="the manifests under review would allow it now (granted after the attempt, or via "
        "a binding missing at the time)"
    )


class K8sPermissionUsage(BaseModel):
    model_config = _PLAIN

    permission: K8sPermission
    wildcard: bool
    used: bool
    sources: list[GrantSource]
    used_by: list[K8sRequest] = Field(description="the concrete requests that fell inside this grant")
    call_count: int = 0


class K8sReconciliation(BaseModel):
    model_config = _PLAIN

    username: str
    permissions: list[K8sPermissionUsage]
    observed: list[ObservedK8sRequest] = Field(description="successful requests (authorization passed)")
    outside_grants: list[ObservedK8sRequest] = Field(
        description="successful requests no supplied manifest explains: the manifests are incomplete"
    )
    denied_attempts: list[DeniedK8sAttempt]
    proposed_rbac: list[dict[str, Any]] = Field(description="rbac.authorization.k8s.io/v1 objects")
    events_considered: int = 0
    events_skipped: int = 0
    granted_count: int = 0
    used_count: int = 0
    unused_count: int = 0

    # Stored rather than computed so the JSON round-trips through a strict model; always
    # recomputed, so a producer cannot ship a headline that disagrees with the table.
    @model_validator(mode="after")
    def _counts(self) -> K8sReconciliation:
        self.granted_count, self.used_count, self.unused_count = _counts(self.permissions)
        return self


# --------------------------------------------------------------------------- AWS IAM


class IamPermission(BaseModel):
    """One (action, resource) pair of a policy statement; wildcards kept as written."""

    model_config = _FROZEN

    action: str
    resource: str = "*"
    not_action: bool = False
    not_resource: bool = False

    @property
    def is_wildcard(self) -> bool:
        # A `bucket/*` object ARN is how S3 grants are normally written, not an
        # over-broad grant; a wildcard action, `Resource: "*"` or a Not* statement is.
        action_pattern = "*" in self.action or "?" in self.action
        return self.not_action or self.not_resource or action_pattern or self.resource == "*"

    @property
    def label(self) -> str:
        action = f"NOT {self.action}" if self.not_action else self.action
        resource = f"NOT {self.resource}" if self.not_resource else self.resource
        return f"{action} on {resource}"


class IamGrantSource(BaseModel):
    model_config = _FROZEN

    policy: str
    sid: str | None = None
    conditional: bool = Field(default=False, description="the statement has a Condition (not evaluated)")


class AwsCall(BaseModel):
    model_config = _FROZEN

    action: str = Field(description="IAM action, e.g. `s3:GetObject`")
    resources: tuple[str, ...] = Field(
        default=(), description="ARNs the action was evaluated on; empty: CloudTrail did not say"
    )


class ObservedAwsCall(BaseModel):
    model_config = _PLAIN

    call: AwsCall
    count: int
    event_ids: list[str] = Field(description="up to 20 sample CloudTrail eventIDs; `count` has the total")
    error_codes: list[str] = Field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class DeniedAwsAttempt(ObservedAwsCall):
    covered_by_current_grant: bool


class IamPermissionUsage(BaseModel):
    model_config = _PLAIN

    permission: IamPermission
    wildcard: bool
    used: bool
    sources: list[IamGrantSource]
    used_by: list[AwsCall]
    call_count: int = 0


class IamReconciliation(BaseModel):
    model_config = _PLAIN

    role_arn: str
    permissions: list[IamPermissionUsage]
    explicit_denies: list[IamPermission] = Field(default_factory=list)
    observed: list[ObservedAwsCall]
    outside_grants: list[ObservedAwsCall]
    denied_attempts: list[DeniedAwsAttempt]
    proposed_policy: dict[str, Any]
    records_considered: int = 0
    granted_count: int = 0
    used_count: int = 0
    unused_count: int = 0

    @model_validator(mode="after")
    def _counts(self) -> IamReconciliation:
        self.granted_count, self.used_count, self.unused_count = _counts(self.permissions)
        return self


# --------------------------------------------------------------------------- ServiceAccount posture


class PostureFinding(BaseModel):
    model_config = _PLAIN

    code: Literal["shared_service_account", "default_service_account"]
    severity: Literal["high", "medium", "low"]
    message: str
    related_deployments: list[str] = Field(default_factory=list)


class AgentPosture(BaseModel):
    model_config = _PLAIN

    deployment: DeploymentId
    service_account: ServiceAccountRef
    findings: list[PostureFinding] = Field(default_factory=list)
    compliant: bool = True

    @model_validator(mode="after")
    def _compliant(self) -> AgentPosture:
        self.compliant = not self.findings
        return self


# --------------------------------------------------------------------------- the report


class ReconciliationReport(Record):
    """The Pillar 2 artifact attached to a deployment ticket: granted vs used, delta highlighted."""

    agent: DeploymentId | None = None
    service_account: ServiceAccountRef
    window_start: datetime | None = None
    window_end: datetime | None = None
    generated_at: datetime
    kubernetes: K8sReconciliation
    aws: IamReconciliation | None = None
    posture: AgentPosture | None = None
    notes: list[str] = Field(default_factory=list)
