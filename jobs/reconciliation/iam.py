"""Granted side for AWS: IAM policy documents → atomic (action, resource) permissions.

Matching follows IAM's documented rules: action names are case-insensitive, ARNs are
case-sensitive, `*` and `?` are the only wildcards. Conditions and policy variables
(`${aws:username}`) are not evaluated: a conditional statement counts as granted and is
flagged, so the reviewer sees it is narrower in practice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from runward.core.contracts.reconciliation import AwsCall, IamGrantSource, IamPermission

POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True, slots=True)
class IamStatement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool = False
    not_resource: bool = False
    sid: str | None = None
    conditional: bool = False


@dataclass(frozen=True, slots=True)
class IamPolicy:
    name: str
    statements: tuple[IamStatement, ...]


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def parse_policy(document: Mapping[str, Any], name: str) -> IamPolicy:
    """A policy document (`{"Version", "Statement"}`); a lone Statement object is allowed."""
    raw = document.get("Statement") or []
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    parsed: list[IamStatement] = []
    for st in statements:
        not_action = "NotAction" in st
        not_resource = "NotResource" in st
        parsed.append(
            IamStatement(
                effect=str(st.get("Effect", "")),
                actions=_strings(st.get("NotAction") if not_action else st.get("Action")),
                # A statement without Resource appears in trust policies; for an identity
                # policy it would be rejected by IAM, so treating it as `*` is only a fallback.
                resources=_strings(st.get("NotResource") if not_resource else st.get("Resource")) or ("*",),
                not_action=not_action,
                not_resource=not_resource,
                sid=st.get("Sid"),
                conditional=bool(st.get("Condition")),
            )
        )
    return IamPolicy(name=name, statements=tuple(parsed))


def granted_iam(
    policies: Sequence[IamPolicy],
) -> tuple[dict[IamPermission, list[IamGrantSource]], dict[IamPermission, list[IamGrantSource]]]:
    """(allows, explicit denies), each atom → the statements granting/denying it."""
    allow: dict[IamPermission, list[IamGrantSource]] = {}
    deny: dict[IamPermission, list[IamGrantSource]] = {}
    for policy in policies:
        for st in policy.statements:
            target = allow if st.effect == "Allow" else deny if st.effect == "Deny" else None
            if target is None:
                continue
            source = IamGrantSource(policy=policy.name, sid=st.sid, conditional=st.conditional)
            for action in st.actions:
                for resource in st.resources:
                    atom = IamPermission(
                        action=action,
                        resource=resource,
                        not_action=st.not_action,
                        not_resource=st.not_resource,
                    )
                    sources = target.setdefault(atom, [])
                    if source not in sources:
                        sources.append(source)
    return allow, deny


@lru_cache(maxsize=4096)
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def action_matches(pattern: str, action: str) -> bool:
    return bool(_glob(pattern, False).match(action))


def resource_matches(pattern: str, arn: str) -> bool:
    return bool(_glob(pattern, True).match(arn))


def covers(permission: IamPermission, call: AwsCall) -> bool:
    if action_matches(permission.action, call.action) == permission.not_action:
        return False
    if not call.resources:
        # CloudTrail did not name the resource: the action alone is the evidence we have.
        return True
    hit = any(resource_matches(permission.resource, arn) for arn in call.resources)
    return hit != permission.not_resource


def propose_policy(calls: Iterable[AwsCall]) -> dict[str, Any]:
    """Allow exactly the observed actions on exactly the observed resources.

    Actions sharing the same resource set share a statement. Generalising object ARNs to a
    prefix (`bucket/reports/*`) is a judgement call left to the reviewer.
    """
    resources_by_action: dict[str, set[str]] = {}
    for call in calls:
        bucket = resources_by_action.setdefault(call.action, set())
        bucket.update(call.resources or ("*",))
    grouped: dict[tuple[str, ...], list[str]] = {}
    for action, arns in sorted(resources_by_action.items()):
        # One call with an unknown resource already forces `*` for that action.
        key = ("*",) if "*" in arns else tuple(sorted(arns))
        grouped.setdefault(key, []).append(action)
    statements: list[dict[str, Any]] = []
    for index, (resources, actions) in enumerate(sorted(grouped.items(), key=lambda kv: kv[1]), start=1):
        statements.append(
            {
                "Sid": f"ObservedUse{index}",
                "Effect": "Allow",
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": resources[0] if len(resources) == 1 else list(resources),
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}
