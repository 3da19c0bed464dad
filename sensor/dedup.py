"""Fold identical events of one container inside a time window. Pure: the caller passes
the time (the kernel timestamp), so a backlog processed late folds exactly as it would
have live."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Hashable


class Deduper:
    def __init__(self, window_s: float = 1.0, max_keys: int = 200_000) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self.folded: Counter[str] = Counter()
        # Ordered by the time each key was last let through, oldest first.
        self._last: OrderedDict[tuple[int, str, Hashable], float] = OrderedDict()

    def admit(self, cgroup_id: int, kind: str, key: Hashable, now: float) -> bool:
        """True if the event should be sent; False if it repeats one sent < window_s ago."""
        if self.window_s <= 0:
            return True
        full = (cgroup_id, kind, key)
        last = self._last.get(full)
        if last is not None and now - last < self.window_s:
            self.folded[kind] += 1
            return False
        self._last[full] = now
        self._last.move_to_end(full)
        self._expire(now)
        return True

    def _expire(self, now: float) -> None:
        while self._last:
            oldest_key, oldest = next(iter(self._last.items()))
            if now - oldest < self.window_s and len(self._last) <= self.max_keys:
                break
            del self._last[oldest_key]

    def __len__(self) -> int:
        return len(self._last)
