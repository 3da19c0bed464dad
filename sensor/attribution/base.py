"""The resolver interface: cgroup id -> who runs there."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Identity:
    """What a resolver knows about a cgroup; field names follow contracts.Attribution."""

    namespace: str | None = None
    pod: str | None = None
    pod_uid: str | None = None
    container_id: str | None = None
    deployment: str | None = None
    service_account: str | None = None


class Resolver(Protocol):
    def resolve(self, cgroup_id: int) -> Identity | None:
        """Identity of the workload in that cgroup, or None if this resolver does not know it."""
        ...

    def watch_paths(self) -> list[Path]:
        """cgroup v2 directories whose whole subtree the sensor should observe."""
        ...


class CompositeResolver:
    """First resolver that knows the cgroup wins; watch paths are the union."""

    def __init__(self, resolvers: Sequence[Resolver]) -> None:
        self.resolvers = list(resolvers)

    def resolve(self, cgroup_id: int) -> Identity | None:
        for resolver in self.resolvers:
            found = resolver.resolve(cgroup_id)
            if found is not None:
                return found
        return None

    def watch_paths(self) -> list[Path]:
        paths: list[Path] = []
        for resolver in self.resolvers:
            paths.extend(p for p in resolver.watch_paths() if p not in paths)
        return paths


class CachingResolver:
    """Remember answers. A complete one (the pod is known) is kept until forgotten: a
    cgroup id is never reused for another workload. A miss or a partial answer (cgroup
    parsed, pod not yet listed) is kept briefly, then asked again."""

    def __init__(
        self, inner: Resolver, retry_after_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._complete: dict[int, Identity] = {}
        self._provisional: dict[int, tuple[float, Identity | None]] = {}

    def resolve(self, cgroup_id: int) -> Identity | None:
        hit = self._complete.get(cgroup_id)
        if hit is not None:
            return hit
        now = self._clock()
        provisional = self._provisional.get(cgroup_id)
        if provisional is not None and now - provisional[0] < self.retry_after_s:
            return provisional[1]
        found = self.inner.resolve(cgroup_id)
        if found is not None and found.pod is not None:
            self._complete[cgroup_id] = found
            self._provisional.pop(cgroup_id, None)
        else:
            self._provisional[cgroup_id] = (now, found)
        return found

    def watch_paths(self) -> list[Path]:
        return self.inner.watch_paths()

    def forget(self, cgroup_id: int) -> None:
        self._complete.pop(cgroup_id, None)
        self._provisional.pop(cgroup_id, None)
