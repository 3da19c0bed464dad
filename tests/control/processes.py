"""Reading the process tree from /proc, and running `runward` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from runward.control.wait import WaitTimeout, wait_until

REPO = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWARD_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def runward(*argv: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runward.control.cli", *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is dead)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_gone(pids: set[int], timeout: float, what: str) -> None:
    """Wait until none of `pids` runs; fail naming the survivors."""
    try:
        wait_until(lambda: not any(alive(p) for p in pids), timeout=timeout, failure=what)
    except WaitTimeout:
        left = {p: command_line(p) for p in pids if alive(p)}
        raise AssertionError(f"{what} within {timeout:.0f} s; still running: {left}") from None


class Output:
    """A process's stdout lines, collected by a thread so the test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._thread.start()

    def wait_for(self, text: str, timeout: float) -> str:
        def seen() -> str | None:
            return next((line for line in list(self.lines) if text in line), None)

        return wait_until(seen, timeout=timeout, failure=f"no line with {text!r} in {''.join(self.lines)!r}")
