"""cgroup v2 filesystem access: where it is mounted and which directory a cgroup id names.

A cgroup v2 id (bpf_get_current_cgroup_id) is the inode number of the cgroup's directory,
so an id is resolved by walking the hierarchy and matching st_ino.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_MOUNTS = Path("/proc/self/mounts")


def cgroup2_mounts(mounts_file: Path = DEFAULT_MOUNTS) -> list[Path]:
    found = []
    try:
        text = mounts_file.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            found.append(Path(fields[1].replace("\\040", " ")))
    return found


def cgroup2_root(mounts_file: Path = DEFAULT_MOUNTS) -> Path | None:
    """The cgroup v2 mount point: /sys/fs/cgroup/unified in hybrid mode, /sys/fs/cgroup on v2."""
    mounts = cgroup2_mounts(mounts_file)
    for preferred in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if preferred in mounts:
            return preferred
    return mounts[0] if mounts else None


def cgroup_id(path: Path) -> int:
    return os.stat(path).st_ino


class CgroupIndex:
    """cgroup id -> path relative to the mount (e.g. '/kubepods.slice/...'), by walking.

    A miss triggers a rescan at most every `min_rescan_s`, so a storm of events from
    an unknown cgroup costs one walk, not one per event.
    """

    def __init__(self, root: Path, min_rescan_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.min_rescan_s = min_rescan_s
        self._clock = clock
        self._paths: dict[int, str] = {}
        self._scanned_at = float("-inf")

    def rescan(self) -> None:
        paths: dict[int, str] = {}
        stack = [self.root]
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            try:
                                ino = entry.inode()
                            except OSError:
                                continue
                            paths[ino] = "/" + os.path.relpath(entry.path, self.root)
                            stack.append(Path(entry.path))
            except OSError:
                continue  # removed while walking
        with contextlib.suppress(OSError):
            paths[cgroup_id(self.root)] = "/"
        self._paths = paths
        self._scanned_at = self._clock()

    def path_of(self, cgroup_id: int, max_age_s: float | None = None) -> str | None:
        known = self._paths.get(cgroup_id)
        if known is not None:
            return known
        age_limit = self.min_rescan_s if max_age_s is None else max_age_s
        if self._clock() - self._scanned_at >= age_limit:
            self.rescan()
        return self._paths.get(cgroup_id)

    def exists(self, cgroup_id: int, max_age_s: float = 5.0) -> bool:
        """Whether the cgroup still exists, as of a scan no older than max_age_s."""
        if self._clock() - self._scanned_at >= max_age_s:
            self.rescan()
        return cgroup_id in self._paths
