"""A workload under a real seccomp filter that logs one syscall (SCMP_ACT_LOG) and allows the
rest: the kernel writes an audit type=1326 record each time the process makes that syscall.

    python log_syscall.py SYSCALL_NR [SECONDS [EVERY]]

With EVERY, the syscall is made again every EVERY seconds while the process lives: the kernel
rate-limits the audit lines it prints (printk_ratelimit, shared with every other process on the
machine: "kauditd_printk_skb: N callbacks suppressed"), so one line can be lost to a neighbour's
flood; a repeated one gets through in a later window. The collector folds the repeats.

The filter is classic BPF installed with prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2), as libseccomp
would install it: check the architecture, then the syscall number.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import time

PR_SET_NO_NEW_PRIVS = 38
SYS_SECCOMP = 317  # x86_64
SECCOMP_SET_MODE_FILTER = 1
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_LOG = 0x7FFC0000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06


def instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def install(logged: int) -> None:
    program = b"".join(
        [
            instruction(BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
            instruction(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
            instruction(BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
            instruction(BPF_JEQ_K, 0, 1, logged),
            instruction(BPF_RET_K, 0, 0, SECCOMP_RET_LOG),
            instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ]
    )
    buffer = ctypes.create_string_buffer(program)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER)")


def main() -> None:
    logged = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    every = float(sys.argv[3]) if len(sys.argv) > 3 else None
    install(logged)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(logged, 0, 0, 0)  # the logged syscall, made once
    print(f"made syscall {logged} under SCMP_ACT_LOG as pid {os.getpid()}", flush=True)
    end = time.monotonic() + seconds
    while every is not None and time.monotonic() + every < end:
        time.sleep(every)
        libc.syscall(logged, 0, 0, 0)
    time.sleep(max(0.0, end - time.monotonic()))  # alive while the collector attributes the record


if __name__ == "__main__":
    main()
