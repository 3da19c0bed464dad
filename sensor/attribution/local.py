"""Local mode: workloads started by `runward run` in their own cgroup v2, recorded in a
JSON registry that maps cgroup id -> namespace, pod, Deployment and ServiceAccount.

The registry is written before the workload's first instruction runs, so the sensor can
attribute its very first exec. Writers serialise on a lock file and replace the file
atomically; readers never see a half-written file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sensor.attribution.base import Identity

REGISTRY_FILE = "workloads.json"
LOCAL_CGROUP_DIR = "runward"
ENDED_RETENTION_S = 600.0  # keep ended workloads a while: their last events may still be in flight


def state_dir() -> Path:
    """$RUNWARD_HOME, default .runward (the same place runward.core.config uses)."""
    return Path(os.environ.get("RUNWARD_HOME", ".runward")).resolve()


def registry_path(home: Path | None = None) -> Path:
    return (home or state_dir()) / REGISTRY_FILE


@dataclass(frozen=True)
class WorkloadEntry:
    cgroup_id: int
    cgroup_path: str
    namespace: str
    deployment: str
    pod: str
    pod_uid: str
    service_account: str
    started_at: float
    ended_at: float | None = None
    pid: int | None = None

    def identity(self) -> Identity:
        return Identity(
            namespace=self.namespace,
            pod=self.pod,
            pod_uid=self.pod_uid,
            deployment=self.deployment,
            service_account=self.service_account,
        )


class Registry:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._cache: dict[int, WorkloadEntry] = {}
        self._cache_stamp: tuple[int, int] | None = None

    # ------------------------------------------------------------------ reading
    def _read(self) -> dict[int, WorkloadEntry]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.path} is not valid JSON ({exc}); remove it to start afresh") from None
        entries = {}
        for raw in data.get("workloads", []):
            entry = WorkloadEntry(**raw)
            entries[entry.cgroup_id] = entry
        return entries

    def entries(self) -> dict[int, WorkloadEntry]:
        """Current entries; re-read only when the file changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._cache, self._cache_stamp = {}, None
            return {}
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp != self._cache_stamp:
            self._cache = self._read()
            self._cache_stamp = stamp
        return self._cache

    # ------------------------------------------------------------------ writing
    @contextmanager
    def _locked(self) -> Iterator[dict[int, WorkloadEntry]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            yield entries
            now = self._clock()
            keep = [asdict(e) for e in entries.values() if e.ended_at is None or now - e.ended_at < ENDED_RETENTION_S]
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": 1, "workloads": keep}, indent=1))
            tmp.replace(self.path)

    def add(self, entry: WorkloadEntry) -> None:
        with self._locked() as entries:
            entries[entry.cgroup_id] = entry

    def update(self, cgroup_id: int, **changes: Any) -> None:
        with self._locked() as entries:
            entry = entries.get(cgroup_id)
            if entry is not None:
                entries[cgroup_id] = WorkloadEntry(**{**asdict(entry), **changes})

    def mark_ended(self, cgroup_id: int) -> None:
        self.update(cgroup_id, ended_at=self._clock())


class LocalResolver:
    def __init__(self, registry: Registry, cgroup_root: Path) -> None:
        self.registry = registry
        self.cgroup_root = cgroup_root

    def resolve(self, cgroup_id: int) -> Identity | None:
        entry = self.registry.entries().get(cgroup_id)
        return entry.identity() if entry is not None else None

    def watch_paths(self) -> list[Path]:
        return [self.cgroup_root / LOCAL_CGROUP_DIR]
