"""Policy proofs as `runward prove` makes them (hashed the same way), for tests that promote to enforce."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from runward.core.contracts import ApdRevision, EnforcementMode, PolicyProof
from runward.core.signing import profile_sha256
from services.enforcer.policies import seccomp_profile

_BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
_TICK = itertools.count(1)


def proof_of(
    apd: ApdRevision,
    passed: bool = True,
    runtime: Sequence[str] = ("execve", "fstatfs"),
    ran_at: datetime | None = None,
) -> PolicyProof:
    """A proof of `apd`'s enforce profile, each newer than the last (the enforcer keeps the latest)
    unless it says when it ran."""
    profile = seccomp_profile(apd, EnforcementMode.ENFORCE, runtime)
    return PolicyProof(
        deployment=apd.deployment,
        apd_revision=apd.revision,
        profile_sha256=profile_sha256(profile),
        passed=passed,
        ran_at=ran_at or _BASE + timedelta(seconds=next(_TICK)),
        runtime="runc 1.1.5+ds1",
        runtime_syscalls=list(runtime),
        summary="passed" if passed else "failed: would be refused: unshare",
    )
