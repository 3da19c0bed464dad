"""Per-container memory of what names resolved to which addresses, so a later connect to
that address can carry the name the workload asked for. Pure: time is passed in."""

from __future__ import annotations

from collections import OrderedDict

from sensor.dnswire import Answer


class DnsCache:
    def __init__(self, min_ttl_s: float = 60.0, max_ttl_s: float = 3600.0, max_entries: int = 50_000) -> None:
        # Resolvers often get TTL 0-30 s but connect a little later or reuse the
        # connection pool for minutes: a floor keeps those connects named.
        self.min_ttl_s = min_ttl_s
        self.max_ttl_s = max_ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str], tuple[str, float]] = OrderedDict()

    def learn(self, cgroup_id: int, answers: list[Answer], now: float) -> None:
        for answer in answers:
            ttl = min(max(float(answer.ttl), self.min_ttl_s), self.max_ttl_s)
            key = (cgroup_id, answer.address)
            self._entries[key] = (answer.name, now + ttl)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def lookup(self, cgroup_id: int, address: str, now: float) -> str | None:
        hit = self._entries.get((cgroup_id, address))
        if hit is None:
            return None
        name, expires = hit
        if now > expires:
            del self._entries[(cgroup_id, address)]
            return None
        return name

    def forget(self, cgroup_id: int) -> None:
        for key in [k for k in self._entries if k[0] == cgroup_id]:
            del self._entries[key]
