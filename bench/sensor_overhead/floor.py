"""Per-syscall cost of the sensor's hooks themselves: prints figures, asserts nothing.

    sudo python bench/sensor_overhead/floor.py [--calls 400000] [--repeats 5]

A child process makes getppid() calls (the cheapest syscall) and open/read/close rounds and
reads its own CPU time (user + system) per call, under four conditions:

  none        nothing attached
  exit tp     an empty syscalls:sys_exit_openat program alone (any syscall tracepoint puts every
              task on the syscall slow path)
  sys_enter   an empty program on the raw sys_enter tracepoint (what any per-syscall set costs)
  +exit tp    that, plus an empty syscalls:sys_exit_openat program (the exit-side hooks)
  +exit raw   sys_enter, plus an empty program on the raw sys_exit tracepoint instead
  sensor      the sensor's object attached, watching nothing (every task is "unwatched")
  watched     the sensor's object attached and watching the loop's own cgroup (dedup window
              1 s, as the sensor runs it: repeated opens fold in the kernel)

The difference to `none` is what the kernel charges every syscall of the node for the hooks:
the syscall slow path and the tracepoint dispatch, which kernel.bpf_stats_enabled does not
see (it times the programs only). Then, with bpf_stats on, the time it reports per run of an
empty program: the stats' own clock reads, included in every per-program figure of run.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sensor.attribution.cgroupfs import cgroup2_root, cgroup_id  # noqa: E402
from sensor.build import ensure_built, find_tool  # noqa: E402
from sensor.cli import sensor_unavailable_reason  # noqa: E402
from sensor.metrics import bpf_program_stats  # noqa: E402
from sensor.workloads import _join_cgroup  # noqa: E402

EMPTY = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
#ifdef ENTER
SEC("tp_btf/sys_enter") int BPF_PROG(floor_enter, struct pt_regs *regs, long id) { return 0; }
#endif
#ifdef EXIT_RAW
SEC("tp_btf/sys_exit") int BPF_PROG(floor_exit_raw, struct pt_regs *regs, long ret) { return 0; }
#endif
#ifdef EXIT_TP
SEC("tracepoint/syscalls/sys_exit_openat") int floor_exit(void *ctx) { return 0; }
#endif
"""

LOOP = r"""
import os, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
getppid = os.getppid
t = time.process_time_ns()
for _ in range(n):
    getppid()
mid = time.process_time_ns()
for _ in range(n // 4):
    os.close(os.open(path, os.O_RDONLY))
end = time.process_time_ns()
print((mid - t) / n, (end - mid) / (n // 4) / 2)
"""


def compile_empty(work: Path, name: str, *defines: str) -> Path:
    source = work / "floor.bpf.c"
    source.write_text(EMPTY)
    out = work / f"{name}.o"
    include = ensure_built().parent
    flags = [f"-D{d}" for d in defines]
    cmd = [find_tool("clang"), "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", *flags]
    subprocess.run([*cmd, "-I", str(include), "-c", str(source), "-o", str(out)], check=True)
    return out


@contextmanager
def attached(objects: list[Path]) -> Iterator[list[Any]]:
    import pylibbpf

    loaded = []
    links: list[Any] = []
    for path in objects:
        obj = pylibbpf.BpfObject(str(path))
        obj.load()
        links.extend(obj.attach_all().values())
        loaded.append(obj)
    try:
        yield loaded
    finally:
        for link in links:
            link.detach()


def per_call(work: Path, calls: int, repeats: int, cgroup: Path | None = None) -> tuple[float, float]:
    """Median CPU ns per getppid() and per syscall of an open/close round (run in cgroup if given)."""
    target = work / "target"
    target.write_text("x")
    samples = []
    join = _join_cgroup(str(cgroup / "cgroup.procs")) if cgroup is not None else None
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", LOOP, str(calls), str(target)],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=join,
        )
        samples.append(tuple(float(x) for x in out.stdout.split()))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def stats_floor(work: Path, enter: Path, calls: int) -> float:
    """ns per run bpf_stats reports for the empty sys_enter program."""
    sysctl = Path("/proc/sys/kernel/bpf_stats_enabled")
    previous = sysctl.read_text().strip()
    with attached([enter]):
        sysctl.write_text("1")
        try:
            per_call(work, calls, 1)
            # This process's own program (its fdinfo), not another run's of the same name.
            (prog,) = [p for p in bpf_program_stats() if p.get("name") == "floor_enter"]
        finally:
            sysctl.write_text(previous)
    return float(prog["run_time_ns"]) / max(1, int(prog["run_cnt"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    reason = sensor_unavailable_reason()
    if reason:
        print(f"cannot measure here: {reason}", file=sys.stderr)
        return 1
    from sensor.kernel import KernelProbes

    with tempfile.TemporaryDirectory(prefix="runward-floor-") as tmp:
        work = Path(tmp)
        enter = compile_empty(work, "enter", "ENTER")
        exit_tp = compile_empty(work, "exit", "EXIT_TP")
        exit_raw = compile_empty(work, "exit_raw", "EXIT_RAW")
        results: dict[str, tuple[float, float]] = {"none": per_call(work, args.calls, args.repeats)}
        with attached([exit_tp]):
            results["exit tp"] = per_call(work, args.calls, args.repeats)
        with attached([enter]):
            results["sys_enter"] = per_call(work, args.calls, args.repeats)
        with attached([enter, exit_tp]):
            results["+exit tp"] = per_call(work, args.calls, args.repeats)
        with attached([enter, exit_raw]):
            results["+exit raw"] = per_call(work, args.calls, args.repeats)
        root = cgroup2_root()
        cgroup = root / f"runward-floor-{os.getpid()}" if root is not None else None
        probes = KernelProbes(ensure_built())
        try:
            results["sensor"] = per_call(work, args.calls, args.repeats)
            if cgroup is not None:
                cgroup.mkdir()
                probes.set_dedup_window(1.0)
                probes.set_watched([cgroup_id(cgroup)])
                results["watched"] = per_call(work, args.calls, args.repeats, cgroup)
        finally:
            probes.close()
            if cgroup is not None and cgroup.exists():
                cgroup.rmdir()
        floor = stats_floor(work, enter, args.calls)
    base = results["none"]
    print(f"\nCPU ns per syscall (median of {args.repeats} x {args.calls:,} getppid, open/close rounds)\n")
    print(f"{'condition':<12}{'getppid':>10}{'+ns':>8}{'open/close':>12}{'+ns':>8}")
    for name, (ppid, oc) in results.items():
        print(f"{name:<12}{ppid:>10.0f}{ppid - base[0]:>8.0f}{oc:>12.0f}{oc - base[1]:>8.0f}")
    print(f"\nbpf_stats on: an empty sys_enter program is reported at {floor:.0f} ns per run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
