"""Processes the control plane starts die with it.

`runward up` and `runward broker` start the broker, the stages, the API and the sensor as
child processes. When the parent is SIGKILLed (or the OOM killer picks it) it cannot stop
them, so each child asks the kernel for a signal when its parent dies (PR_SET_PDEATHSIG):
a stage then shuts down as on Ctrl-C instead of running on as an orphan.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: deliver `sig` to the child when this process dies."""
    parent = os.getpid()
    # Resolved here, in the parent: between fork and exec the child should only make the call
    # (loading a library there can deadlock on a lock another parent thread held at fork).
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl: then nobody will signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return arm
