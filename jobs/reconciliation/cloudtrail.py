"""Used side for AWS: CloudTrail `Records[]` → the IAM actions one role exercised.

A CloudTrail eventName is an API operation, not always the IAM action that authorised it
(S3's ListObjectsV2 is authorised by s3:ListBucket). The tables below cover the common
S3 and Lambda cases from AWS's "actions, resources and condition keys" reference; any
other event maps to `<service>:<eventName>`, which is right for most services.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.reconciliation.audit import MAX_EVIDENCE_IDS, parse_timestamp
from runward.core.contracts.reconciliation import AwsCall, DeniedAwsAttempt, ObservedAwsCall

# eventSource host prefixes whose IAM service prefix differs.
_SERVICE_ALIASES = {"monitoring": "cloudwatch", "email": "ses"}

_S3_ACTIONS = {
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "HeadObject": "GetObject",
    "DeleteObjects": "DeleteObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
}
_LAMBDA_ACTIONS = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}
# Lambda logs versioned operation names, e.g. GetFunction20150331v2.
_LAMBDA_VERSION_SUFFIX = re.compile(r"\d{8}(v\d+)?$")

_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"}
)
_ASSUMED_ROLE = re.compile(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/")
_ROLE = re.compile(r"^arn:([^:]+):iam::(\d+):role/(?:.*/)?([^/]+)$")


def iam_action(record: Mapping[str, Any]) -> str:
    source = str(record.get("eventSource", "")).split(".amazonaws.com", 1)[0]
    service = _SERVICE_ALIASES.get(source, source)
    name = str(record.get("eventName", ""))
    if service == "s3":
        name = _S3_ACTIONS.get(name, name)
    elif service == "lambda":
        name = _LAMBDA_VERSION_SUFFIX.sub("", name)
        name = _LAMBDA_ACTIONS.get(name, name)
    return f"{service}:{name}"


def is_denied(record: Mapping[str, Any]) -> bool:
    code = str(record.get("errorCode") or "")
    return code in _DENIED_CODES or code.startswith("AccessDenied")


def role_matches(record: Mapping[str, Any], role_arn: str) -> bool:
    """Did the role (or a session of it, e.g. IRSA's AssumeRoleWithWebIdentity) make the call?"""
    identity = record.get("userIdentity") or {}
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    arn = str(identity.get("arn") or "")
    if role_arn in (issuer, arn):
        return True
    # The session ARN drops the role's path, so compare partition, account and name.
    session, role = _ASSUMED_ROLE.match(arn), _ROLE.match(role_arn)
    return bool(session and role and session.groups() == role.groups())


def call_resources(record: Mapping[str, Any], action: str) -> tuple[str, ...]:
    """The ARNs IAM evaluated the action against: object ARNs for S3 object actions, etc."""
    resources = [r for r in record.get("resources") or [] if r.get("ARN")]
    if action.startswith("s3:"):
        operation = action.split(":", 1)[1]
        object_level = "Object" in operation and "Bucket" not in operation
        wanted = "AWS::S3::Object" if object_level else "AWS::S3::Bucket"
        arns = [str(r["ARN"]) for r in resources if r.get("type") == wanted]
        if arns:
            return tuple(sorted(set(arns)))
        return _s3_from_parameters(record, object_level)
    return tuple(sorted({str(r["ARN"]) for r in resources}))


def _s3_from_parameters(record: Mapping[str, Any], object_level: bool) -> tuple[str, ...]:
    params = record.get("requestParameters") or {}
    bucket = params.get("bucketName")
    if not bucket:
        return ()
    partition = str((record.get("userIdentity") or {}).get("arn") or "arn:aws").split(":")[1]
    key = params.get("key")
    if object_level and key:
        return (f"arn:{partition}:s3:::{bucket}/{key}",)
    return (f"arn:{partition}:s3:::{bucket}",)


@dataclass
class _Fold:
    count: int = 0
    event_ids: list[str] = field(default_factory=list)
    error_codes: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, record: Mapping[str, Any]) -> None:
        self.count += 1
        if (event_id := record.get("eventID")) and len(self.event_ids) < MAX_EVIDENCE_IDS:
            self.event_ids.append(str(event_id))
        if code := record.get("errorCode"):
            self.error_codes.add(str(code))
        if (ts := parse_timestamp(record.get("eventTime"))) is not None:
            self.first = ts if self.first is None else min(self.first, ts)
            self.last = ts if self.last is None else max(self.last, ts)


@dataclass
class CloudTrailExtraction:
    used: dict[AwsCall, _Fold] = field(default_factory=dict)
    denied: dict[AwsCall, _Fold] = field(default_factory=dict)
    considered: int = 0
    window_start: datetime | None = None
    window_end: datetime | None = None

    def observed(self) -> list[ObservedAwsCall]:
        return [_observed(c, f) for c, f in sorted(self.used.items(), key=lambda kv: kv[0].action)]

    def denied_attempts(self, covered: dict[AwsCall, bool]) -> list[DeniedAwsAttempt]:
        return [
            DeniedAwsAttempt(**_observed(c, f).model_dump(), covered_by_current_grant=covered.get(c, False))
            for c, f in sorted(self.denied.items(), key=lambda kv: kv[0].action)
        ]


def _observed(call: AwsCall, fold: _Fold) -> ObservedAwsCall:
    return ObservedAwsCall(
        call=call,
        count=fold.count,
        event_ids=fold.event_ids,
        error_codes=sorted(fold.error_codes),
        first_seen=fold.first,
        last_seen=fold.last,
    )


def extract_calls(
    records: Iterable[Mapping[str, Any]],
    role_arn: str,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> CloudTrailExtraction:
    out = CloudTrailExtraction()
    seen: set[str] = set()
    for record in records:
        event_id = str(record.get("eventID") or "")
        if event_id:
            if event_id in seen:
                continue  # the same event delivered in two log files (multi-region trails)
            seen.add(event_id)
        ts = parse_timestamp(record.get("eventTime"))
        if ts is not None and ((window_start and ts < window_start) or (window_end and ts > window_end)):
            continue
        if ts is not None:
            out.window_start = ts if out.window_start is None else min(out.window_start, ts)
            out.window_end = ts if out.window_end is None else max(out.window_end, ts)
        if not role_matches(record, role_arn):
            continue
        out.considered += 1
        action = iam_action(record)
        call = AwsCall(action=action, resources=call_resources(record, action))
        target = out.denied if is_denied(record) else out.used
        target.setdefault(call, _Fold()).add(record)
    return out
