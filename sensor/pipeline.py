"""Kernel records -> attributed, de-duplicated RawSensorEvents. No I/O of its own: the
resolver is injected, time comes from the records, the caller publishes the result.

Secrets never leave the node: an exec's argv is redacted here (`--password X`, `PGPASSWORD=...`,
tokens in arguments), before the event is de-duplicated, published or counted.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from runward.core.contracts import RawSensorEvent
from runward.core.contracts.common import Attribution
from runward.core.contracts.raw import (
    CapabilityDetail,
    ConnectDetail,
    DnsDetail,
    ExecDetail,
    ExitDetail,
    FileOpenDetail,
    SyscallSetDetail,
)
from runward.core.redaction import redact_argv
from sensor.attribution.base import Identity, Resolver
from sensor.capabilities import capability_name
from sensor.dedup import Deduper
from sensor.dnscache import DnsCache
from sensor.dnswire import parse_answers, parse_query
from sensor.wire import CapRecord, ConnRecord, DnsRecord, ExecRecord, ExitRecord, KernelRecord, OpenRecord

Detail = ExecDetail | ExitDetail | FileOpenDetail | ConnectDetail | DnsDetail | CapabilityDetail


_ARGV_CACHE_SIZE = 1024
_argv_cache: dict[bytes, tuple[str, ...]] = {}


def _redacted_argv(argv: list[str]) -> list[str]:
    """redact_argv once per distinct command line: a loop that runs the same command (a shell
    loop, a tool called again and again) sends the same argv hundreds of times a second, and
    the redaction's patterns cost more than the rest of the event (py-spy on the sensor during
    bench/sensor_overhead's syscall-bound loop). Keyed by a digest, so no unredacted argv is
    kept once its event is handled."""
    digest = hashlib.blake2b("\0".join(argv).encode(errors="surrogatepass"), digest_size=16).digest()
    clean = _argv_cache.get(digest)
    if clean is None:
        if len(_argv_cache) >= _ARGV_CACHE_SIZE:
            _argv_cache.clear()
        clean = _argv_cache[digest] = tuple(redact_argv(argv)[0])
    return list(clean)


@dataclass(frozen=True)
class Emitted:
    key: str
    event: RawSensorEvent
    cgroup_id: int


def dedup_key(detail: Detail, comm: str = "") -> Hashable:
    """What makes two events of one container 'identical' (pid and time excluded)."""
    if isinstance(detail, ExecDetail):
        return (detail.binary, tuple(detail.argv))
    if isinstance(detail, ExitDetail):
        return (comm, detail.exit_code)  # ExitDetail has no binary: the process name stands in
    if isinstance(detail, FileOpenDetail):
        return (detail.path, detail.flags)
    if isinstance(detail, ConnectDetail):
        return (detail.family, detail.address, detail.port, detail.protocol, detail.dns_name)
    if isinstance(detail, DnsDetail):
        return (detail.name, detail.qtype)
    return detail.capability


class Pipeline:
    def __init__(
        self,
        node: str,
        resolver: Resolver,
        dedup: Deduper | None = None,
        dns: DnsCache | None = None,
        wall_offset_ns: int = 0,
    ) -> None:
        self.node = node
        self.resolver = resolver
        # `is None`, not `or`: an empty Deduper is falsy (it has a length).
        self.dedup = Deduper() if dedup is None else dedup
        self.dns = DnsCache() if dns is None else dns
        # wall clock = CLOCK_MONOTONIC + offset; the adapter refreshes it against NTP steps.
        self.wall_offset_ns = wall_offset_ns
        self.emitted: Counter[str] = Counter()
        self.unattributed = 0
        # Ids unique per node and sensor run without a uuid per event (this is the hot path).
        self._id_prefix = f"{node}-{time.time_ns():x}-"
        self._seq = itertools.count()
        self._attributions: dict[tuple[int, Identity], Attribution] = {}
        self.malformed_dns = 0
        self.dns_responses = 0
        self._pending_losses: dict[int, int] = {}
        self._syscalls: dict[int, frozenset[str]] = {}

    # -------------------------------------------------------------- attribution
    def attribution(self, cgroup_id: int) -> Attribution:
        identity = self.resolver.resolve(cgroup_id) or Identity()
        if identity.deployment is None:
            self.unattributed += 1
        cached = self._attributions.get((cgroup_id, identity))
        if cached is None:
            # Validated once per cgroup and identity, then shared by its events (never mutated).
            cached = self._attributions[(cgroup_id, identity)] = Attribution(
                node=self.node,
                cgroup_id=cgroup_id,
                container_id=identity.container_id,
                pod_uid=identity.pod_uid,
                namespace=identity.namespace,
                pod=identity.pod,
                deployment=identity.deployment,
                service_account=identity.service_account,
            )
        return cached

    def next_id(self) -> str:
        return f"{self._id_prefix}{next(self._seq):x}"

    def key_for(self, attribution: Attribution) -> str:
        return attribution.deployment or f"{self.node}:{attribution.cgroup_id}"

    def wall_time(self, ts_ns: int) -> datetime:
        return datetime.fromtimestamp((ts_ns + self.wall_offset_ns) / 1e9, tz=UTC)

    # -------------------------------------------------------------- records
    def _detail(self, record: KernelRecord, now: float) -> Detail | None:
        cgroup_id = record.header.cgroup_id
        if isinstance(record, ExecRecord):
            return ExecDetail(
                binary=record.binary,
                argv=_redacted_argv(record.argv),
                ppid=record.ppid,
                parent_comm=record.parent_comm or None,
            )
        if isinstance(record, ExitRecord):
            return ExitDetail(exit_code=record.exit_code)
        if isinstance(record, OpenRecord):
            return FileOpenDetail(path=record.path, flags=record.flags)
        if isinstance(record, ConnRecord):
            name = self.dns.lookup(cgroup_id, record.address, now) if record.kind == "connect" else None
            return ConnectDetail(
                kind=record.kind,
                family=record.family,
                address=record.address,
                port=record.port,
                protocol=record.protocol,
                dns_name=name,
            )
        if isinstance(record, DnsRecord):
            if record.response:
                self.dns_responses += 1
                self.dns.learn(cgroup_id, parse_answers(record.payload), now)
                return None
            question = parse_query(record.payload)
            if question is None:
                self.malformed_dns += 1
                return None
            return DnsDetail(name=question.name, qtype=question.qtype)
        if isinstance(record, CapRecord):
            return CapabilityDetail(capability=capability_name(record.cap))
        raise TypeError(f"unexpected record {type(record).__name__}")

    def handle(self, record: KernelRecord) -> Emitted | None:
        h = record.header
        now = h.ts_ns / 1e9
        losses = self._pending_losses.pop(h.cgroup_id, 0) + h.losses
        detail = self._detail(record, now)
        if detail is None or not self.dedup.admit(h.cgroup_id, detail.kind, dedup_key(detail, h.comm), now):
            # The losses ride on the next event that does go out.
            if losses:
                self._pending_losses[h.cgroup_id] = losses
            return None
        attribution = self.attribution(h.cgroup_id)
        event = RawSensorEvent(
            event_id=self.next_id(),
            ts=self.wall_time(h.ts_ns),
            pid=h.pid,
            comm=h.comm or None,
            attribution=attribution,
            detail=detail,
            kernel_losses=losses,
        )
        self.emitted[detail.kind] += 1
        return Emitted(self.key_for(attribution), event, h.cgroup_id)

    def syscalls(self, cgroup_id: int, names: list[str], ts_ns: int) -> Emitted | None:
        """A syscall-set event when the cgroup's set grew since the last one sent.

        The event lists the whole set seen so far, not only the new names: a consumer that
        misses one event still ends up with the complete set after the next.
        """
        current = frozenset(names)
        previous = self._syscalls.get(cgroup_id, frozenset())
        if current <= previous:
            return None
        self._syscalls[cgroup_id] = previous | current
        attribution = self.attribution(cgroup_id)
        event = RawSensorEvent(
            event_id=self.next_id(),
            ts=self.wall_time(ts_ns),
            attribution=attribution,
            detail=SyscallSetDetail(syscalls=sorted(previous | current)),
            kernel_losses=self._pending_losses.pop(cgroup_id, 0),
        )
        self.emitted["syscalls"] += 1
        return Emitted(self.key_for(attribution), event, cgroup_id)

    def note_dropped(self, cgroup_id: int, count: int = 1) -> None:
        """Events of this cgroup that the sensor itself could not send (queue full)."""
        self._pending_losses[cgroup_id] = self._pending_losses.get(cgroup_id, 0) + count

    def forget(self, cgroup_id: int) -> None:
        for key in [k for k in self._attributions if k[0] == cgroup_id]:
            del self._attributions[key]
        self._syscalls.pop(cgroup_id, None)
        self._pending_losses.pop(cgroup_id, None)
        self.dns.forget(cgroup_id)
