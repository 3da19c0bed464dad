"""Kernel adapter: load and attach the BPF object with pylibbpf, fill its maps, read its
ring buffer and per-cgroup state. Everything that touches the kernel goes through here."""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sensor.wire import C

WATCH = C["RW_WATCH"]  # observe this cgroup's subtree
EXCLUDE = C["RW_EXCLUDE"]  # ... except this subtree (the sensor's own cgroup, for instance)

_CONFIG = struct.Struct("<IIQII")
_STAT_NAMES = {
    C["RW_STAT_EMITTED"]: "emitted",
    C["RW_STAT_OUTPUT_FAILED"]: "output_failed",
    C["RW_STAT_STATE_FULL"]: "state_map_full",
}
KERNEL_FOLDS = {
    C["RW_STAT_FOLDED_OPEN"]: "file_open",
    C["RW_STAT_FOLDED_CONNECT"]: "connect",
    C["RW_STAT_FOLDED_ACCEPT"]: "accept",
}


class KernelError(RuntimeError):
    pass


class RingBuffer:
    """Consumer of a BPF_MAP_TYPE_RINGBUF map (pylibbpf only reads perf buffers).

    The kernel maps one read-write page holding the consumer position, then one read-only
    page holding the producer position followed by the data area, mapped twice in a row so
    that a record wrapping around the end reads as one slice. Records are an 8-byte header
    (length with busy/discard bits, page offset) and the sample, padded to 8 bytes.
    """

    BUSY = 1 << 31
    DISCARD = 1 << 30
    HEADER = 8

    def __init__(self, map_fd: int, size: int, on_sample: Callable[[int, bytes], None]) -> None:
        if size <= 0 or size & (size - 1):
            raise KernelError(f"ring buffer size {size} is not a power of two")
        page = mmap.PAGESIZE
        self._mask = size - 1
        self._on_sample = on_sample
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._producer = mmap.mmap(map_fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._data = memoryview(self._producer)[page:]
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)

    def consume(self) -> int:
        """Hand every complete record to on_sample; returns how many."""
        pos = struct.unpack_from("<Q", self._consumer, 0)[0]
        count = 0
        unpack = struct.unpack_from
        while True:
            # x86 keeps loads in order (the kernel publishes with a release store): no fence.
            end = unpack("<Q", self._producer, 0)[0]
            if pos >= end:
                return count
            while pos < end:
                off = pos & self._mask
                length = unpack("<I", self._data, off)[0]
                if length & self.BUSY:  # reserved, not yet committed
                    return count
                size = length & ~(self.BUSY | self.DISCARD)
                if not length & self.DISCARD:
                    start = off + self.HEADER
                    self._on_sample(0, bytes(self._data[start : start + size]))
                    count += 1
                pos += (size + self.HEADER + 7) & ~7
                struct.pack_into("<Q", self._consumer, 0, pos)

    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms (the programs wake the reader only when the ring fills
        up), then drain it."""
        self._epoll.poll(timeout_ms / 1000)
        return self.consume()

    def close(self) -> None:
        self._epoll.close()
        self._data.release()
        self._producer.close()
        self._consumer.close()


def _as_int(value: Any) -> int:
    # pylibbpf hands back 4- and 8-byte values as ints and other sizes as bytes.
    return value if isinstance(value, int) else int.from_bytes(bytes(value), "little")


class KernelProbes:
    def __init__(self, object_path: Path) -> None:
        import pylibbpf

        try:
            self._obj: Any = pylibbpf.BpfObject(str(object_path))
            self._obj.load()
            self._links = self._obj.attach_all()
        except pylibbpf.BpfException as exc:
            raise KernelError(
                f"loading {object_path.name} failed: {exc} (the verifier log is on stderr above)"
            ) from exc
        self._watched: dict[int, int] = {}
        self._gen = 1  # 0 marks a per-CPU verdict slot being written
        self._sock_rw = True
        self._dedup_window_ns = 0
        self._ring: RingBuffer | None = None
        self._write_config()

    @property
    def programs(self) -> list[str]:
        return sorted(self._links)

    def _map(self, name: str) -> Any:
        return self._obj[name]

    def _write_config(self) -> None:
        self._map("rw_config")[0] = _CONFIG.pack(
            self._gen, 1 if self._sock_rw else 0, self._dedup_window_ns, os.getpid(), 0
        )

    # ------------------------------------------------------------------ configuration
    def set_watched(self, watch: Iterable[int], exclude: Iterable[int] = ()) -> bool:
        """Make the in-kernel filter match exactly these cgroups; True if it changed."""
        wanted = {cg: WATCH for cg in watch}
        wanted.update({cg: EXCLUDE for cg in exclude})
        if wanted == self._watched:
            return False
        watched = self._map("watched")
        for cg in self._watched.keys() - wanted.keys():
            watched.delete_elem(cg)
        for cg, value in wanted.items():
            watched[cg] = value
        self._watched = wanted
        # Cached per-cgroup verdicts were computed against the old set: invalidate them all.
        self._gen += 1
        self._write_config()
        return True

    def set_dns_ports(self, ports: Iterable[int]) -> None:
        dns_ports = self._map("dns_ports")
        for port in list(dns_ports.keys()):
            dns_ports.delete_elem(port)
        for port in ports:
            dns_ports[port] = 1

    def set_socket_read_write(self, enabled: bool) -> None:
        self._sock_rw = enabled
        self._write_config()

    def set_dedup_window(self, seconds: float) -> None:
        """Fold repeated opens and connections in the kernel too (0 disables)."""
        self._dedup_window_ns = max(0, int(seconds * 1e9))
        self._write_config()

    # ------------------------------------------------------------------ events
    def open_events(
        self, on_sample: Callable[[int, bytes], None], on_lost: Callable[[int, int], None] | None = None
    ) -> None:
        """Deliver every event to on_sample(cpu, data) from poll(). A ring buffer loses no
        sample silently: a full ring makes the program's output fail, which the kernel counts
        (stats `output_failed`, and `kernel_losses` on the container's next event), so
        on_lost is never called; it is kept for callers written against the perf buffer."""
        if self._ring is not None:
            raise KernelError("the event buffer is already open")
        events = self._map("events")
        self._ring = RingBuffer(events.get_fd(), C["RW_RINGBUF_BYTES"], on_sample)

    def poll(self, timeout_ms: int) -> int:
        if self._ring is None:
            raise KernelError("open_events() first")
        return self._ring.poll(timeout_ms)

    # ------------------------------------------------------------------ per-cgroup state
    def syscall_bitmaps(self) -> dict[int, bytes]:
        words = C["RW_SYSCALL_WORDS"] * 8
        return {int(cg): bytes(value[:words]) for cg, value in self._map("cgstate").items().items()}

    def forget_cgroup(self, cgroup_id: int) -> None:
        with contextlib.suppress(Exception):  # already gone
            self._map("cgstate").delete_elem(cgroup_id)
        # Each CPU remembers which syscalls a cgroup's state holds; a new generation makes
        # them start over, should the cgroup still be alive.
        self._gen += 1
        self._write_config()

    def stats(self) -> dict[str, int]:
        stats = self._map("stats")
        return {name: _as_int(stats[index]) for index, name in _STAT_NAMES.items()}

    def kernel_folds(self) -> dict[str, int]:
        """Events folded by the in-kernel dedup window, by kind."""
        stats = self._map("stats")
        return {kind: _as_int(stats[index]) for index, kind in KERNEL_FOLDS.items()}

    def close(self) -> None:
        for program in self._links.values():
            with contextlib.suppress(Exception):
                program.detach()
        if self._ring is not None:
            self._ring.close()
        self._ring = None
        self._links = {}
        self._obj = None
