"""The one wait helper: poll until something is ready, with a timeout and a clear message.

`runward up` waiting for a stage's heartbeat or the sensor's programs, the demo waiting for
its attack story and `runward replay` waiting at a barrier all poll the same way: check,
sleep, give up with a sentence naming what did not happen and where to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

T = TypeVar("T")

# Progress goes to stderr: stdout stays the command's result (tables, JSON, counts).
progress_console = Console(stderr=True)


class WaitTimeout(RuntimeError):
    """What was waited for did not happen in time (the message says what and where to look)."""


class GaveUp(RuntimeError):
    """The thing waited for can no longer become ready (a process died); the message says why."""


def wait_until(
    ready: Callable[[], T | None],
    *,
    timeout: float,
    failure: str,
    interval: float = 0.3,
    abandon: Callable[[], str | None] | None = None,
    status: str | None = None,
) -> T:
    """Call `ready` until it returns something truthy and return that.

    `failure` completes "... within N s" in the timeout message. `abandon`, when given, is
    asked first on every round and returns a reason to stop waiting early (a process that
    exited), raised as GaveUp. `status` shows a spinner with the elapsed time on a terminal.
    """
    deadline = time.monotonic() + timeout
    spinner = progress_console.status(status) if status and progress_console.is_terminal else None
    started = time.monotonic()
    if spinner is not None:
        spinner.start()
    try:
        while True:
            if abandon is not None:
                reason = abandon()
                if reason:
                    raise GaveUp(reason)
            value = ready()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{failure} within {timeout:.0f} s")
            if spinner is not None:
                spinner.update(f"{status} ({time.monotonic() - started:.0f} s)")
            time.sleep(interval)
    finally:
        if spinner is not None:
            spinner.stop()
