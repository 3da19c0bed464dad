"""AWS side: IAM wildcard matching, CloudTrail attribution, and the synthetic sample's split.

Hand derivation for tests/data/posture/cloudtrail_agent_synthetic.json (SYNTHETIC) against
iam_agent_policy.json, role arn:aws:iam::111122223333:role/agents/research-agent:

  record 0001 GetObject research-corpus/papers/a.pdf      -> s3:GetObject  used
  record 0002 GetObject research-corpus/papers/b.pdf      -> s3:GetObject  used
  record 0003 ListObjectsV2 research-corpus               -> s3:ListBucket used (bucket ARN)
  record 0004 GetObject .../missing.pdf, NoSuchKey        -> s3:GetObject  used (authorised, then 404)
  record 0005 InvokeModel (no resources in the record)    -> bedrock:InvokeModel used
  record 0006 PutObject agent-scratch/out/report.json     -> s3:PutObject  used
  record 0007 DeleteObject research-corpus/..., AccessDenied -> denied attempt
  record 0008 iam:ListRoles, AccessDenied, no sessionContext -> denied attempt (matched via session ARN)
  record 0009 summarizer-agent role                       -> not this agent
  record 0001 again (same eventID)                        -> deduplicated
Allow atoms (9): Get* x {bucket, bucket/*}, ListBucket x {bucket, bucket/*}, PutObject and
DeleteObject on agent-scratch/*, bedrock:InvokeModel* on *, secretsmanager:GetSecretValue,
dynamodb:* -> used: Get* on research-corpus/*, ListBucket on research-corpus,
PutObject on agent-scratch/*, bedrock:InvokeModel* => granted 9, used 4, unused 5.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobs.reconciliation import ReconciliationReport, parse_policy, reconcile_aws
from jobs.reconciliation.cloudtrail import iam_action, role_matches
from jobs.reconciliation.iam import action_matches, covers, resource_matches
from runward.core.contracts.reconciliation import AwsCall, IamPermission

ROLE = "arn:aws:iam::111122223333:role/agents/research-agent"


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3:getobjectacl", True),  # IAM action names are case-insensitive
        ("s3:Get*", "s3:PutObject", False),
        ("s3:Get*", "s3express:GetObject", False),
        ("s3:*Object", "s3:DeleteObject", True),
        ("s3:*Object", "s3:DeleteObjects", False),
        ("ec2:Describe?pcs", "ec2:DescribeVpcs", True),
        ("*", "iam:CreateUser", True),
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


def test_resource_wildcards_are_case_sensitive() -> None:
    assert resource_matches("arn:aws:s3:::corpus/*", "arn:aws:s3:::corpus/a/b.pdf")
    assert not resource_matches("arn:aws:s3:::corpus/*", "arn:aws:s3:::corpus")
    assert not resource_matches("arn:aws:s3:::Corpus/*", "arn:aws:s3:::corpus/a")
    assert resource_matches("arn:aws:s3:::corpus-?/*", "arn:aws:s3:::corpus-1/x")


def test_not_action_and_statement_shapes() -> None:
    policy = parse_policy(
        {"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*", "Condition": {"Bool": {}}}},
        "p",
    )
    (statement,) = policy.statements
    assert statement.not_action and statement.conditional
    atom = IamPermission(action="iam:*", not_action=True)
    assert covers(atom, AwsCall(action="s3:GetObject")) and not covers(atom, AwsCall(action="iam:ListRoles"))


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("s3.amazonaws.com", "ListObjectsV2", "s3:ListBucket"),
        ("s3.amazonaws.com", "HeadObject", "s3:GetObject"),
        ("lambda.amazonaws.com", "Invoke", "lambda:InvokeFunction"),
        ("lambda.amazonaws.com", "GetFunction20150331v2", "lambda:GetFunction"),
        ("monitoring.amazonaws.com", "PutMetricData", "cloudwatch:PutMetricData"),
        ("bedrock.amazonaws.com", "InvokeModel", "bedrock:InvokeModel"),
    ],
)
def test_cloudtrail_event_to_iam_action(source: str, name: str, expected: str) -> None:
    assert iam_action({"eventSource": source, "eventName": name}) == expected


def _identity(arn: str, issuer: str | None = None) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": "AssumedRole", "arn": arn}
    if issuer:
        identity["sessionContext"] = {"sessionIssuer": {"type": "Role", "arn": issuer}}
    return {"userIdentity": identity}


def test_role_matching() -> None:
    session = "arn:aws:sts::111122223333:assumed-role/research-agent/s1"
    assert role_matches(_identity(session, ROLE), ROLE)
    assert role_matches(_identity(session), ROLE)  # path dropped in the session ARN
    assert not role_matches(_identity(session), "arn:aws:iam::999999999999:role/research-agent")
    assert not role_matches(_identity("arn:aws:sts::111122223333:assumed-role/research-agent-2/s"), ROLE)


def test_explicit_deny_wins_over_allow_for_denied_attempts() -> None:
    policy = parse_policy(
        {
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::corpus/*"},
            ]
        },
        "p",
    )
    record = {
        "eventID": "e1",
        "eventSource": "s3.amazonaws.com",
        "eventName": "DeleteObject",
        "errorCode": "AccessDenied",
        "requestParameters": {"bucketName": "corpus", "key": "a"},
        **_identity("arn:aws:sts::111122223333:assumed-role/research-agent/s", ROLE),
    }
    aws, *_ = reconcile_aws([policy], [record], ROLE)
    (attempt,) = aws.denied_attempts
    assert attempt.call == AwsCall(action="s3:DeleteObject", resources=("arn:aws:s3:::corpus/a",))
    assert attempt.covered_by_current_grant is False
    assert [p.label for p in aws.explicit_denies] == ["s3:Delete* on arn:aws:s3:::corpus/*"]


def test_synthetic_cloudtrail_split(full_report: ReconciliationReport) -> None:
    aws = full_report.aws
    assert aws is not None
    assert (aws.granted_count, aws.used_count, aws.unused_count) == (9, 4, 5)
    assert aws.records_considered == 8
    used = {(u.permission.action, u.permission.resource): u.call_count for u in aws.permissions if u.used}
    assert used == {
        ("s3:Get*", "arn:aws:s3:::research-corpus/*"): 3,
        ("s3:ListBucket", "arn:aws:s3:::research-corpus"): 1,
        ("s3:PutObject", "arn:aws:s3:::agent-scratch/*"): 1,
        ("bedrock:InvokeModel*", "*"): 1,
    }
    unused = {(u.permission.action, u.permission.resource) for u in aws.permissions if not u.used}
    assert unused == {
        ("s3:Get*", "arn:aws:s3:::research-corpus"),
        ("s3:ListBucket", "arn:aws:s3:::research-corpus/*"),
        ("s3:DeleteObject", "arn:aws:s3:::agent-scratch/*"),
        ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:agent/*"),
        ("dynamodb:*", "*"),
    }
    wildcard_get = next(u for u in aws.permissions if u.permission.action == "s3:Get*" and u.used)
    assert wildcard_get.wildcard and {c.action for c in wildcard_get.used_by} == {"s3:GetObject"}
    put = next(u for u in aws.permissions if u.permission.action == "s3:PutObject")
    assert not put.wildcard  # an object-prefix ARN is the normal S3 shape, not a wildcard grant
    denied = {(d.call.action, d.covered_by_current_grant, tuple(d.error_codes)) for d in aws.denied_attempts}
    assert denied == {
        ("s3:DeleteObject", False, ("AccessDenied",)),
        ("iam:ListRoles", False, ("AccessDenied",)),
    }
    assert aws.outside_grants == []


def test_least_privilege_policy_for_used_actions(full_report: ReconciliationReport) -> None:
    assert full_report.aws is not None
    assert full_report.aws.proposed_policy == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ObservedUse1", "Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "*"},
            {
                "Sid": "ObservedUse2",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [
                    "arn:aws:s3:::research-corpus/papers/a.pdf",
                    "arn:aws:s3:::research-corpus/papers/b.pdf",
                    "arn:aws:s3:::research-corpus/papers/missing.pdf",
                ],
            },
            {
                "Sid": "ObservedUse3",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::research-corpus",
            },
            {
                "Sid": "ObservedUse4",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::agent-scratch/out/report.json",
            },
        ],
    }
