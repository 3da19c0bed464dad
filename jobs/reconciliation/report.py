"""Declared vs observed: join the granted side with the used side into the report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from jobs.reconciliation import cloudtrail, iam, matching
from jobs.reconciliation.audit import AuditInput, extract_requests, is_discovery
from jobs.reconciliation.iam import IamPolicy
from jobs.reconciliation.proposal import ProposalOptions, propose_rbac
from jobs.reconciliation.rbac import Identity, RbacInventory, granted_permissions
from runward.core.contracts.common import utcnow
from runward.core.contracts.reconciliation import (
    AgentPosture,
    AwsCall,
    IamPermissionUsage,
    IamReconciliation,
    K8sPermissionUsage,
    K8sReconciliation,
    K8sRequest,
    ReconciliationReport,
    ServiceAccountRef,
)


def reconcile_kubernetes(
    inventory: RbacInventory,
    events: Iterable[AuditInput],
    identity: Identity,
    *,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    options: ProposalOptions | None = None,
) -> tuple[K8sReconciliation, datetime | None, datetime | None, list[str]]:
    """RBAC granted to `identity` vs the requests it made; also returns the window and notes."""
    options = options or ProposalOptions()
    granted, notes = granted_permissions(inventory, identity)
    extraction = extract_requests(events, identity.username, window_start, window_end)
    used = extraction.used

    usages: list[K8sPermissionUsage] = []
    for permission, sources in granted.items():
        inside = [r for r in used if matching.covers(permission, r)]
        usages.append(
            K8sPermissionUsage(
                permission=permission,
                wildcard=permission.is_wildcard,
                used=bool(inside),
                sources=sources,
                used_by=sorted(inside, key=lambda r: r.label),
                call_count=sum(used[r].count for r in inside),
            )
        )
    # Unused first: the delta is what the ticket is about.
    usages.sort(key=lambda u: (u.used, u.permission.label))

    def is_granted(request: K8sRequest) -> bool:
        return any(matching.covers(p, request) for p in granted)

    outside = [o for o in extraction.observed() if not is_granted(o.request) and not is_discovery(o.request)]
    covered = {r: is_granted(r) for r in extraction.denied}
    proposal_input = list(used) + (list(extraction.denied) if options.include_denied else [])

    result = K8sReconciliation(
        username=identity.username,
        permissions=usages,
        observed=extraction.observed(),
        outside_grants=outside,
        denied_attempts=extraction.denied_attempts(covered),
        proposed_rbac=propose_rbac(proposal_input, identity.username, options),
        events_considered=extraction.considered,
        events_skipped=extraction.skipped,
    )
    if outside:
        notes.append(
            f"{len(outside)} successful request(s) are not explained by the supplied RBAC manifests "
            "(missing manifests, aggregated ClusterRoles or another authorizer)"
        )
    return result, extraction.window_start, extraction.window_end, notes


def reconcile_aws(
    policies: Sequence[IamPolicy],
    records: Iterable[Mapping[str, Any]],
    role_arn: str,
    *,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> tuple[IamReconciliation, datetime | None, datetime | None]:
    """IAM granted to the role vs the CloudTrail calls it made; also returns the trail's span."""
    allow, deny = iam.granted_iam(policies)
    extraction = cloudtrail.extract_calls(records, role_arn, window_start, window_end)
    used = extraction.used

    usages: list[IamPermissionUsage] = []
    for permission, sources in allow.items():
        inside = [c for c in used if iam.covers(permission, c)]
        usages.append(
            IamPermissionUsage(
                permission=permission,
                wildcard=permission.is_wildcard,
                used=bool(inside),
                sources=sources,
                used_by=sorted(inside, key=lambda c: (c.action, c.resources)),
                call_count=sum(used[c].count for c in inside),
            )
        )
    usages.sort(key=lambda u: (u.used, u.permission.label))

    def is_granted(call: AwsCall) -> bool:
        allowed = any(iam.covers(p, call) for p in allow)
        return allowed and not any(iam.covers(p, call) for p in deny)

    result = IamReconciliation(
        role_arn=role_arn,
        permissions=usages,
        explicit_denies=sorted(deny, key=lambda p: p.label),
        observed=extraction.observed(),
        outside_grants=[o for o in extraction.observed() if not is_granted(o.call)],
        denied_attempts=extraction.denied_attempts({c: is_granted(c) for c in extraction.denied}),
        proposed_policy=iam.propose_policy(used),
        records_considered=extraction.considered,
    )
    return result, extraction.window_start, extraction.window_end


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def build_report(
    service_account: ServiceAccountRef | str,
    inventory: RbacInventory,
    audit_events: Iterable[AuditInput],
    *,
    agent: str | None = None,
    iam_policies: Sequence[IamPolicy] = (),
    cloudtrail_records: Iterable[Mapping[str, Any]] = (),
    aws_role_arn: str | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    options: ProposalOptions | None = None,
    posture: AgentPosture | None = None,
    generated_at: datetime | None = None,
) -> ReconciliationReport:
    """The full declared-vs-observed report for one agent's ServiceAccount.

    The AWS section is present only when `aws_role_arn` is given (the role the SA assumes,
    e.g. via IRSA); the window defaults to the span of the audit log.
    """
    sa = service_account if isinstance(service_account, ServiceAccountRef) else ServiceAccountRef.parse(service_account)
    identity = Identity(username=sa.username, groups=sa.groups)
    k8s, start, end, notes = reconcile_kubernetes(
        inventory, audit_events, identity, window_start=window_start, window_end=window_end, options=options
    )
    aws = None
    if aws_role_arn is not None:
        aws, aws_start, aws_end = reconcile_aws(
            iam_policies, cloudtrail_records, aws_role_arn, window_start=window_start, window_end=window_end
        )
        # Without an explicit window the report spans both evidence sources.
        start = window_start or _earliest(start, aws_start)
        end = window_end or _latest(end, aws_end)
    return ReconciliationReport(
        agent=agent,
        service_account=sa,
        window_start=start,
        window_end=end,
        generated_at=generated_at or utcnow(),
        kubernetes=k8s,
        aws=aws,
        posture=posture,
        notes=[*inventory.notes, *notes],
    )
