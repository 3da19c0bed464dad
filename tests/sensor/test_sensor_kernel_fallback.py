"""The object built for kernels before 6.3 (no socket send/receive tracepoints): DNS answers
are read on the exit of recvfrom and recvmsg instead. Built and loaded on this kernel, which
has every hook that variant uses."""

from __future__ import annotations

import os
import secrets
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensor.attribution.cgroupfs import cgroup2_root
from sensor.cli import sensor_unavailable_reason
from sensor.dnswire import parse_answers
from sensor.wire import DnsRecord, decode
from sensor.workloads import _join_cgroup, _remove_cgroup

pytestmark = pytest.mark.kernel

_reason = sensor_unavailable_reason()
if _reason:
    pytest.skip(f"kernel tests need the sensor to run here: {_reason}", allow_module_level=True)

NAME = "fallback.agents.internal"
# An unconnected socket (sendto/recvfrom, Python's own resolvers) and a connected one
# answered through recvmsg.
CLIENT = r"""
import socket, struct, sys
ip, name = sys.argv[1], sys.argv[2]
question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query = struct.pack(">HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(query, (ip, 53)); u.recvfrom(512)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(5)
c.connect((ip, 53)); c.sendmsg([query]); c.recvmsg(512)
"""


class Responder:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for last in range(20, 40):
            try:
                self.sock.bind((f"127.0.0.{last}", 53))
                break
            except OSError:
                continue
        else:
            pytest.skip("no free 127.0.0.x:53 for the test DNS responder")
        self.ip = self.sock.getsockname()[0]
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            end = query.index(b"\0", 12) + 5
            header = struct.pack(">HHHHHH", struct.unpack(">H", query[:2])[0], 0x8180, 1, 1, 0, 0)
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton("127.0.0.7")
            self.sock.sendto(header + query[12:end] + answer, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def fallback_probes(tmp_path: Path) -> Iterator[object]:
    from sensor.build import Features, build_variant
    from sensor.kernel import KernelProbes

    obj = build_variant(Features(cap_tracepoint=False, sock_tracepoints=False, rdonly_cast=False), tmp_path / "old.o")
    kernel = KernelProbes(obj)
    kernel.set_dns_ports([53])
    kernel.set_dedup_window(0)
    yield kernel
    kernel.close()


def test_answers_are_read_on_recvfrom_and_recvmsg_exit(fallback_probes: object, tmp_path: Path) -> None:
    kernel = fallback_probes
    assert "rw_recvfrom" in kernel.programs and "rw_sock_recv" not in kernel.programs  # type: ignore[attr-defined]
    root = cgroup2_root()
    assert root is not None
    cgroup = root / f"runward-fallback-{secrets.token_hex(3)}"
    cgroup.mkdir()
    dns = Responder()
    records: list[DnsRecord] = []

    def on_sample(cpu: int, data: bytes) -> None:
        record = decode(data)
        if isinstance(record, DnsRecord) and record.header.cgroup_id == os.stat(cgroup).st_ino:
            records.append(record)

    try:
        kernel.set_watched([os.stat(cgroup).st_ino])  # type: ignore[attr-defined]
        kernel.open_events(on_sample)  # type: ignore[attr-defined]
        proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT, dns.ip, NAME], preexec_fn=_join_cgroup(str(cgroup / "cgroup.procs"))
        )
        assert proc.wait(30) == 0
        kernel.poll(100)  # type: ignore[attr-defined]
    finally:
        dns.close()
        _remove_cgroup(cgroup)
    questions = [r for r in records if not r.response]
    answers = [r for r in records if r.response]
    assert len(questions) == 2 and all(r.port == 53 and r.address == dns.ip for r in questions)
    assert len(answers) == 2, "one answer read with recvfrom, one with recvmsg"
    for answer in answers:
        assert answer.address == dns.ip and answer.port == 53
        assert [(a.name, a.address) for a in parse_answers(answer.payload)] == [(NAME, "127.0.0.7")]
