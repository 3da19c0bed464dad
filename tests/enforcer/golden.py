"""A fixed run of enforcer records and the bytes of every policy bundle it yields.

`tests/enforcer/golden_bundles.json` holds what the enforcer emitted for this run before its
per-record cost was cut (copy-on-write state, documents reused while their inputs are the same):
`tests/unit/test_enforcer_outputs.py` checks today's output is byte for byte the same. The run
covers every mode, every kind of destination, proofs, stories, freezing, accepting, a rollout
and refused decisions, for three Deployments interleaved with the same behaviours: two with the
same selector (a reused document must never carry another Deployment's name), one whose selector
is learnt after the revision it was frozen on.

Regenerate only for an intended change of the documents, and say so in the commit:

    PYTHONPATH=$PWD .venv/bin/python -m tests.enforcer.golden
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runward.core.codec import encode
from runward.core.contracts import (
    ApdRevision,
    ArgumentRule,
    EnforcementMode,
    PodTemplateRevision,
    PolicyProof,
    PromotionDecision,
    StoryStatus,
    WindowStatus,
)
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.readiness import ReadinessReport
from tests.enforcer.proofs import proof_of
from tests.enforcer.stories import story_of

GOLDEN = Path(__file__).with_name("golden_bundles.json")
T = datetime(2026, 1, 9, tzinfo=timezone.utc)
NOW = T + timedelta(days=1)
V1 = PodTemplateRevision(template_hash="sha256:" + "1" * 64, pod_template_hash="7d9f8c6b5", image_digests={})
V2 = PodTemplateRevision(template_hash="sha256:" + "2" * 64, pod_template_hash="5c4b7f9d8", image_digests={})
BOT = {
    "matchLabels": {"app.kubernetes.io/name": "bot"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"},
    ],
}
SELECTORS: dict[str, dict[str, Any]] = {
    "agents/bot": BOT,
    "agents/twin": BOT,  # the same pods' labels in another namespace: only the names tell them apart
    "agents/late": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["late"]}]},
}
LATE_SELECTOR = 5
"""The APD revision from which agents/late's APDs carry its selector (frozen on one without it)."""
EGRESS = [
    "egress:api.openai.com:443/tcp",
    "egress:crm-mcp.tools.svc.cluster.local:8080/tcp",
    "egress:vectors.data.svc:6333/tcp",
    "egress:db-0.pg.data.pod.cluster.local:5432/tcp",
    "egress:10.0.3.7:443/tcp",
    "egress:2001:db8::1:443/tcp",
    "egress:API.Example.COM.:443/tcp",
    "egress:ntp.example:123/udp",
]
EGRESS_IP = ["162.159.140.245:443/tcp", "2606:4700::6810:84e5:443/tcp"]
SYSCALLS = ["syscall:openat", "syscall:read", "syscall:write"]
TOOLS = ["tool:github/repos/create_issue", "tool:time/get_current_time"]
TOOL_ARGUMENTS = {
    "github/repos/create_issue": {
        "title": ArgumentRule(types=["string"], max_length=120),
        "repo": ArgumentRule(types=["string"], values=["acme/web", "acme/api"]),
    }
}


def _apd(
    deployment: str,
    revision: int,
    egress: list[str],
    *,
    pending: dict[str, list[str]] | None = None,
    rev: PodTemplateRevision | None = V1,
    tools: bool = True,
) -> ApdRevision:
    behaviours = {
        "egress": sorted(egress),
        "egress_ip": EGRESS_IP,
        "dns": ["dns:api.openai.com"],
        "ingress": ["ingress:8080/tcp", "ingress:9090/tcp"],
        "syscalls": SYSCALLS,
        "processes": ["exec:/usr/bin/python3"],
    }
    if tools:
        behaviours["mcp_tools"] = TOOLS
    return ApdRevision(
        deployment=deployment,
        revision=revision,
        created_at=T + timedelta(minutes=revision),
        autonomy="low",
        window_started_at=T,
        window_ends_at=T,
        window_status=WindowStatus.COMPLETE,
        behaviours=behaviours,
        pending=pending or {},
        deployment_revision=rev,
        pod_selector=SELECTORS[deployment] if deployment != "agents/late" or revision >= LATE_SELECTOR else None,
        tool_arguments=TOOL_ARGUMENTS if tools else None,
    )


def _decision(deployment: str, mode: EnforcementMode, accept: int | None = None) -> PromotionDecision:
    return PromotionDecision(
        deployment=deployment, mode=mode, approver="lead", reason="r", ts=T, accept_apd_revision=accept
    )


def _proof(apd: ApdRevision, tick: int, passed: bool = True, runtime: tuple[str, ...] = ()) -> PolicyProof:
    return proof_of(apd, passed, runtime, ran_at=T + timedelta(seconds=tick))


def _ready(deployment: str, mode: EnforcementMode) -> ReadinessReport:
    """Nothing failing: the run is about the documents, not the gate's readiness checks."""
    return ReadinessReport(deployment=deployment, target=mode, mode=EnforcementMode.AUDIT, computed_at=T)


def _records(deployment: str) -> Iterator[tuple[Any, ReadinessReport | None]]:
    """One Deployment's life: observe, audit, enforce, frozen, accept, rollout, back down."""
    more = [*EGRESS, "egress:paste.example:443/tcp"]
    r4 = _apd(deployment, 4, EGRESS, pending={"egress": ["egress:new.example:443/tcp"]})
    r6 = _apd(deployment, 6, more)
    audit, enforce, observe = EnforcementMode.AUDIT, EnforcementMode.ENFORCE, EnforcementMode.OBSERVE
    yield _apd(deployment, 1, EGRESS[:3], tools=False), None
    yield _apd(deployment, 1, EGRESS[:3], tools=False), None  # redelivered: no bundle
    yield _apd(deployment, 2, EGRESS[:3]), None  # same destinations, tools learnt
    yield _apd(deployment, 3, EGRESS), None
    yield story_of(deployment, "s1", StoryStatus.POTENTIAL_COMPROMISE, T), None
    yield _decision(deployment, audit), _ready(deployment, audit)  # refused: s1 holds the gate
    yield story_of(deployment, "s1", StoryStatus.EXPECTED_DRIFT, T), None
    yield _decision(deployment, audit), _ready(deployment, audit)
    yield _apd(deployment, 3, EGRESS), None  # redelivered in audit
    yield r4, None
    yield _proof(r4, 1, passed=False), None
    yield _decision(deployment, enforce), _ready(deployment, enforce)  # refused: the proof failed
    yield _proof(r4, 2, runtime=("execve", "fstatfs")), None
    yield _proof(r4, 1, runtime=("execve",)), None  # older than the proof held: no bundle
    yield _decision(deployment, enforce), _ready(deployment, enforce)
    yield _apd(deployment, 5, more), None  # frozen on r4: only pending_widening moves
    yield r6, None
    yield _decision(deployment, enforce, accept=5), None  # refused: not the latest
    yield _proof(r6, 3, runtime=("execve", "fstatfs", "getdents64")), None
    yield _decision(deployment, enforce, accept=6), None
    yield _apd(deployment, 7, more, rev=V2), None  # rollout: audit under the frozen r6
    yield _apd(deployment, 8, [*more, "egress:late.example:8443/tcp"], rev=V2), None
    yield _decision(deployment, observe), _ready(deployment, observe)
    yield _apd(deployment, 9, more, rev=V2), None


def interleaved() -> Iterator[tuple[str, int, Any, ReadinessReport | None]]:
    """The Deployments' lives, a record of each in turn: (deployment, step, record, report)."""
    lives = {d: list(_records(d)) for d in SELECTORS}
    for step in range(max(len(life) for life in lives.values())):
        for deployment, life in lives.items():
            if step < len(life):
                yield deployment, step, *life[step]


def run() -> list[dict[str, Any]]:
    """Each record's outcome: the bundle's bytes as published (and a digest of the state the
    table keeps), nothing, or the gate's refusal."""
    states: dict[str, EnforcerState | None] = dict.fromkeys(SELECTORS)
    outcomes: list[dict[str, Any]] = []
    for deployment, step, record, report in interleaved():
        outcome: dict[str, Any] = {"deployment": deployment, "step": step, "record": type(record).__name__}
        try:
            state, bundle = apply(states[deployment], record, NOW, report)
        except PromotionRefused as refused:
            outcome["refused"] = str(refused)
        else:
            states[deployment] = state
            outcome["bundle"] = encode(bundle).decode() if bundle is not None else None
            outcome["state_sha256"] = hashlib.sha256(encode(state)).hexdigest()
        outcomes.append(outcome)
    return outcomes


def main() -> None:
    GOLDEN.write_text(json.dumps(run(), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
