"""Can the sensor run here? Plain-language reasons when it cannot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sensor.attribution.cgroupfs import cgroup2_root

BTF = Path("/sys/kernel/btf/vmlinux")
TRACEFS = Path("/sys/kernel/tracing")
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39
MIN_KERNEL = (5, 15)


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int:
    for line in status.read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def kernel_version(release: str | None = None) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _has_tools() -> str | None:
    from sensor.build import BuildError, find_tool

    for tool in ("clang", "bpftool"):
        try:
            find_tool(tool)
        except BuildError as exc:
            return str(exc)
    return None


def unavailable_reason() -> str | None:
    """None when the sensor can start; otherwise what is missing and how to fix it."""
    if os.uname().sysname != "Linux":
        return "the eBPF sensor needs Linux"
    if os.uname().machine != "x86_64":
        return f"the sensor's syscall wiring is x86_64 only (this machine is {os.uname().machine})"
    if kernel_version() < MIN_KERNEL:
        wanted = ".".join(map(str, MIN_KERNEL))
        return f"kernel {os.uname().release} is too old: the sensor needs Linux {wanted} or later"
    caps = effective_capabilities()
    can_bpf = caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON) or caps & (1 << CAP_SYS_ADMIN)
    if not can_bpf:
        return (
            "loading eBPF programs needs root with CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): "
            "run it with sudo, or grant those capabilities to its container"
        )
    if not BTF.exists():
        return f"no kernel BTF at {BTF}: the kernel must be built with CONFIG_DEBUG_INFO_BTF=y"
    if cgroup2_root() is None:
        return "no cgroup v2 hierarchy is mounted (expected /sys/fs/cgroup or /sys/fs/cgroup/unified)"
    try:
        import pylibbpf  # noqa: F401
    except ImportError:
        return "pylibbpf is not installed: pip install pylibbpf==0.0.6"
    from sensor.build import is_current

    if not is_current():
        missing = _has_tools()
        if missing:
            return f"the BPF object must be built first and {missing}"
    return None


def mount_tracefs() -> str | None:
    """Mount tracefs if absent: the syscalls:sys_exit_* tracepoints (opens, connects,
    accepts) are attached by the ids it lists; the BTF tracepoints do not need it. Returns a
    note when it could not be mounted."""
    if (TRACEFS / "events").exists():
        return None
    result = subprocess.run(
        [shutil.which("mount") or "/bin/mount", "-t", "tracefs", "tracefs", str(TRACEFS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return (
            f"tracefs could not be mounted on {TRACEFS} ({result.stderr.strip()}); "
            "the syscall exit tracepoints will not attach"
        )
    return None
