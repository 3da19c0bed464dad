"""Kernel features probed from the BTF dump decide which programs are compiled in."""

from __future__ import annotations

from pathlib import Path

from sensor.build import probe_features

SOCK = (
    "typedef void (*btf_trace_sock_send_length)(void *, struct sock *, int, int);\n"
    "typedef void (*btf_trace_sock_recv_length)(void *, struct sock *, int, int);\n"
)
CAP = "typedef void (*btf_trace_cap_capable)(void *, const struct cred *, int, int);\n"


def test_a_recent_kernel_gets_the_capability_and_socket_tracepoints_and_the_cast(tmp_path: Path) -> None:
    header = tmp_path / "vmlinux.h"
    header.write_text(SOCK + CAP)
    btf = tmp_path / "btf"
    btf.write_bytes(b"\0bpf_obj_new_impl\0bpf_rdonly_cast\0bpf_task_acquire\0")
    assert probe_features(header, btf).defines() == [
        "-DRW_HAVE_CAP_TRACEPOINT",
        "-DRW_HAVE_SOCK_TRACEPOINTS",
        "-DRW_HAVE_RDONLY_CAST",
    ]


def test_an_older_kernel_builds_without_them(tmp_path: Path) -> None:
    header = tmp_path / "vmlinux.h"
    header.write_text("typedef void (*btf_trace_sys_enter)(void *, struct pt_regs *, long int);\n")
    btf = tmp_path / "btf"
    btf.write_bytes(b"\0bpf_rdonly_cast_other\0")
    assert probe_features(header, btf).defines() == []
    header.write_text(SOCK.splitlines()[0] + "\n")  # both socket tracepoints are needed
    assert "-DRW_HAVE_SOCK_TRACEPOINTS" not in probe_features(header, tmp_path / "absent").defines()
