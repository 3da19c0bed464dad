"""State rebuilt from the store when a changelog is gone: the APD and the enforcer carry on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from runward.core.contracts import (
    ApdRevision,
    EnforcementMode,
    EnrichedEvent,
    Exec,
    ExecInfo,
    PolicyProof,
    SourceRef,
    Surface,
    WindowStatus,
)
from runward.core.signing import profile_sha256
from services.enforcer.domain import apply
from services.enforcer.policies import seccomp_profile
from services.enforcer.recovery import restore as restore_enforcer
from services.profiler.apd import Policy, fold
from services.profiler.recovery import restore

T0 = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
POLICY = Policy(window_override_s=60, drift_correlation_s=3600)


def exec_event(binary: str, at: datetime) -> EnrichedEvent:
    return EnrichedEvent(
        event_id=f"{binary}-{at.isoformat()}",
        ts=at,
        deployment="agents/bot",
        namespace="agents",
        pod="bot-1",
        surface=Surface.PROCESS,
        kind="exec",
        behaviour=Exec(binary=binary),
        detail=ExecInfo(binary=binary, argv=[binary]),
        source=SourceRef(topic="runward.events.enriched", partition=0, offset=1),
    )


def test_a_restored_apd_continues_its_revisions_and_window() -> None:
    state = None
    revisions: list[ApdRevision] = []
    for i, binary in enumerate(["/bin/a", "/bin/b"]):
        result = fold(state, exec_event(binary, T0 + timedelta(seconds=i)), POLICY)
        state = result.state
        revisions += [result.revision] if result.revision else []
    latest = revisions[-1]
    rebuilt = restore(latest)
    after = fold(rebuilt, exec_event("/bin/c", T0 + timedelta(seconds=5)), POLICY)
    assert after.revision is not None and after.revision.revision == latest.revision + 1
    assert after.revision.window_started_at == T0
    assert after.revision.behaviours["exec"] == ["exec:/bin/a", "exec:/bin/b", "exec:/bin/c"]
    # After the window a restored state signals instead of learning, as the original would.
    late = fold(after.state, exec_event("/bin/sh", T0 + timedelta(seconds=61)), POLICY)
    assert [s.behaviour.key for s in late.signals if s.behaviour] == ["exec:/bin/sh"]


def proof_of(apd: ApdRevision, at: datetime) -> PolicyProof:
    profile = seccomp_profile(apd, EnforcementMode.ENFORCE, ["execve"])
    return PolicyProof(
        deployment=apd.deployment,
        apd_revision=apd.revision,
        profile_sha256=profile_sha256(profile),
        passed=True,
        ran_at=at,
        runtime="runc 1.1.5",
        runtime_syscalls=["execve"],
    )


def test_a_restored_enforcer_keeps_the_promoted_mode_and_numbering() -> None:
    apd = ApdRevision(
        deployment="agents/bot",
        revision=4,
        created_at=T0,
        autonomy="low",
        window_started_at=T0 - timedelta(days=3),
        window_ends_at=T0,
        window_status=WindowStatus.COMPLETE,
        behaviours={"exec": ["exec:/bin/a"]},
    )
    state, bundle = apply(None, apd, T0)
    state.mode = EnforcementMode.ENFORCE
    state.revision = 7
    state.proof = state.frozen_proof = proof_of(apd.model_copy(update={"revision": 5}), T0)
    state, bundle = apply(state, apd.model_copy(update={"revision": 5}), T0)
    assert bundle is not None
    rebuilt = restore_enforcer(
        "agents/bot", bundle.model_dump(mode="json"), apd.model_dump(mode="json") | {"revision": 5}
    )
    assert rebuilt is not None and rebuilt.mode is EnforcementMode.ENFORCE and rebuilt.revision == 8
    # The proof comes back with the bundle, frozen with the enforce-mode policies it proved.
    assert rebuilt.proof == bundle.proof and rebuilt.frozen_proof == bundle.proof
    _, nxt = apply(rebuilt, apd.model_copy(update={"revision": 6}), T0)
    assert nxt is not None and nxt.revision == 9 and nxt.mode is EnforcementMode.ENFORCE
    assert nxt.proof == bundle.proof and nxt.seccomp_profile == bundle.seccomp_profile
    assert restore_enforcer("agents/new", None, None) is None
