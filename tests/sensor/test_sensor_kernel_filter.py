"""The in-kernel cgroup filter, driven directly through the kernel adapter: subtree
watching, a changed watch set reaching cgroups whose verdict was already cached, and
exclusion of a cgroup inside a watched subtree."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensor.attribution.cgroupfs import cgroup2_root
from sensor.cli import sensor_unavailable_reason
from sensor.wire import OpenRecord, decode
from sensor.workloads import _join_cgroup, _remove_cgroup

pytestmark = pytest.mark.kernel

_reason = sensor_unavailable_reason()
if _reason:
    pytest.skip(f"kernel tests need the sensor to run here: {_reason}", allow_module_level=True)

LOOP = "import sys, time\nwhile True:\n    open(sys.argv[1]).close()\n    time.sleep(0.02)\n"


@pytest.fixture
def probes() -> Iterator[object]:
    from sensor.build import ensure_built
    from sensor.kernel import KernelProbes

    kernel = KernelProbes(ensure_built())
    kernel.set_dedup_window(0)  # every open is a sample: the filter alone decides
    yield kernel
    kernel.close()


@pytest.fixture
def nested(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes], Path]]:
    root = cgroup2_root()
    assert root is not None
    parent = root / f"runward-filter-{secrets.token_hex(3)}"
    child = parent / "pod"
    child.mkdir(parents=True)
    marker = tmp_path / "marker"
    marker.write_text("x")
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOP, str(marker)], preexec_fn=_join_cgroup(str(child / "cgroup.procs"))
    )
    try:
        yield parent, child, proc, marker
    finally:
        proc.kill()
        proc.wait()
        _remove_cgroup(child)
        _remove_cgroup(parent)


class Opens:
    """Counts the marker opens of one cgroup; the perf buffer is opened once per object."""

    def __init__(self, kernel: object, cgroup: int, marker: Path) -> None:
        self.kernel, self.cgroup, self.marker = kernel, cgroup, str(marker)
        self.seen = 0
        kernel.open_events(self._on_sample, lambda cpu, n: None)  # type: ignore[attr-defined]

    def _on_sample(self, cpu: int, data: bytes) -> None:
        record = decode(data)
        if isinstance(record, OpenRecord) and record.header.cgroup_id == self.cgroup and record.path == self.marker:
            self.seen += 1

    def during(self, seconds: float) -> int:
        before = self.seen
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.kernel.poll(50)  # type: ignore[attr-defined]
        return self.seen - before


def test_watch_set_changes_reach_cached_verdicts_and_the_deepest_entry_wins(
    probes: object, nested: tuple[Path, Path, subprocess.Popen[bytes], Path]
) -> None:
    parent, child, proc, marker = nested
    child_id = os.stat(child).st_ino
    kernel = probes
    opens = Opens(kernel, child_id, marker)
    time.sleep(0.3)  # the loop has run: its cgroup's verdict is cached as unwatched
    assert opens.during(0.5) == 0

    assert kernel.set_watched([os.stat(parent).st_ino])  # type: ignore[attr-defined]
    assert opens.during(0.7) >= 5, "the subtree of a watched cgroup is observed"

    kernel.set_watched([os.stat(parent).st_ino], exclude=[child_id])  # type: ignore[attr-defined]
    opens.during(0.2)  # drain what was already in the buffer
    assert opens.during(0.5) == 0, "an excluded cgroup inside a watched one is quiet"
    assert proc.poll() is None


TIGHT = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[2])\n"
    "while time.monotonic() < end:\n"
    "    open(sys.argv[1]).close()\n"
)


def test_a_file_opened_without_pause_is_reported_again_each_window(probes: object, tmp_path: Path) -> None:
    """The kernel folds a repeated open against the CPU's slot and reads the clock only when
    the tick moves: a loop opening one file back to back for 1.5 s with a 0.3 s window must
    still be reported about once per window, never folded for good, and the rest counted."""
    root = cgroup2_root()
    assert root is not None
    cgroup = root / f"runward-fold-{secrets.token_hex(3)}"
    cgroup.mkdir()
    marker = tmp_path / "marker"
    marker.write_text("x")
    kernel = probes
    try:
        kernel.set_dedup_window(0.3)  # type: ignore[attr-defined]
        kernel.set_watched([os.stat(cgroup).st_ino])  # type: ignore[attr-defined]
        folded_before = kernel.kernel_folds()["file_open"]  # type: ignore[attr-defined]
        opens = Opens(kernel, os.stat(cgroup).st_ino, marker)
        proc = subprocess.Popen(
            [sys.executable, "-c", TIGHT, str(marker), "1.5"], preexec_fn=_join_cgroup(str(cgroup / "cgroup.procs"))
        )
        seen = opens.during(2.2)
        assert proc.wait(10) == 0
        seen += opens.during(0.2)
        folded = kernel.kernel_folds()["file_open"] - folded_before  # type: ignore[attr-defined]
        # 1.5 s / 0.3 s = 5 windows; a CPU change can start another (each CPU has its slot,
        # the shared dedup map still folds), a late start or a stall can lose one.
        assert 4 <= seen <= 8, f"{seen} reports of a file opened back to back for 1.5 s"
        assert folded > 1000, "the opens in between were folded in the kernel"
    finally:
        _remove_cgroup(cgroup)
