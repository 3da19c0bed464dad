"""Seccomp audit records (type 1326) from the kernel's audit multicast group, and syscall names.

Why the multicast group: it needs no audit daemon, is not rate limited like the printk copy in
/dev/kmsg, and leaves the host's audit configuration alone. Why an audit login id: a process's
`loginuid` (and a fresh audit session) is inherited by everything it starts, runc and the
container included, so records of one run are told apart from any other process's by `auid=`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
AUDIT_SECCOMP = 1326
_AUDIT_ARCH_X86_64 = 0xC000003E
_RECORD = re.compile(r"auid=(\d+) .*?\bpid=(\d+) .*?\bcomm=\"?([^\" ]*)\"? .*?\bsyscall=(\d+)")


class AuditUnavailable(RuntimeError):
    """The kernel's audit records cannot be read here (needs root / CAP_AUDIT_READ)."""


@lru_cache(maxsize=1)
def _libseccomp() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise AuditUnavailable(f"libseccomp is not installed ({exc}); apt-get install libseccomp2") from None
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    return lib


def syscall_name(number: int, arch: int = _AUDIT_ARCH_X86_64) -> str:
    """The syscall's name as seccomp profiles spell it (libseccomp's own table)."""
    lib = _libseccomp()
    pointer = lib.seccomp_syscall_resolve_num_arch(arch, number)
    if not pointer:
        return f"syscall_{number}"
    name = ctypes.string_at(pointer).decode()
    ctypes.CDLL(None).free(ctypes.c_void_p(pointer))
    return name


@dataclass(frozen=True)
class SeccompRecord:
    pid: int
    comm: str
    syscall: str
    line: str


@dataclass
class SeccompAudit:
    """Collects the seccomp audit records of processes started with `preexec` (a unique auid)."""

    auid: int = field(default_factory=lambda: 0x52570000 + secrets.randbelow(0xFFFF))
    records: list[SeccompRecord] = field(default_factory=list)
    _socket: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> SeccompAudit:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
            sock.bind((0, AUDIT_NLGRP_READLOG))
        except OSError as exc:
            raise AuditUnavailable(f"cannot join the audit multicast group: {exc} (run as root)") from None
        sock.settimeout(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._socket = sock
        self._thread = threading.Thread(target=self._read, name="seccomp-audit", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        # Records are queued by kauditd a moment after the syscall: drain before stopping.
        time.sleep(0.5)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._socket is not None:
            self._socket.close()

    @property
    def preexec(self) -> Callable[[], None]:
        auid = self.auid

        def mark() -> None:
            with open("/proc/self/loginuid", "w") as handle:
                handle.write(str(auid))

        return mark

    @property
    def syscalls(self) -> list[str]:
        return sorted({r.syscall for r in self.records})

    def _read(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                data = self._socket.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue  # ENOBUFS: the queue overflowed; later records still count
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        while len(data) >= 16:
            length, kind = struct.unpack("=IH", data[:6])
            if length < 16:
                return
            if kind == AUDIT_SECCOMP:
                self._record(data[16:length].decode(errors="replace"))
            data = data[(length + 3) & ~3 :]

    def _record(self, line: str) -> None:
        match = _RECORD.search(line)
        if match is None or int(match.group(1)) != self.auid:
            return
        self.records.append(
            SeccompRecord(
                pid=int(match.group(2)), comm=match.group(3), syscall=syscall_name(int(match.group(4))), line=line
            )
        )


def audit_available() -> str | None:
    """Why seccomp audit records cannot be read here, or None."""
    if os.geteuid() != 0:
        return "not root"
    try:
        _libseccomp()
    except AuditUnavailable as exc:
        return str(exc)
    return None
