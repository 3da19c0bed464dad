"""CLI hooks: `runward run` and `runward sensor`.

The main CLI calls `add_commands(subparsers)`; `python -m sensor.cli` offers the same
commands on their own.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from sensor import preflight


def sensor_unavailable_reason() -> str | None:
    """None when `runward sensor` can run on this machine, else why not (for `runward up`)."""
    return preflight.unavailable_reason()


def _home() -> Path:
    from sensor.attribution.local import state_dir

    return state_dir()


def _write_ready(path: Path, programs: str) -> None:
    # Written whole, then renamed: a reader never sees a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"pid {os.getpid()}\nprograms {programs}\n")
    tmp.replace(path)


def _exit_status(codes: list[int]) -> int:
    for code in codes:
        if code != 0:
            return 128 - code if code < 0 else code  # killed by a signal: shell convention
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from sensor.workloads import WorkloadError, run_workload

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print(
            "runward run: give the command after --, e.g. runward run --deployment ns/app "
            "--service-account app -- python agent.py",
            file=sys.stderr,
        )
        return 2
    try:
        workload = run_workload(args.deployment, args.service_account, args.replicas, cmd)
    except (WorkloadError, ValueError, OSError) as exc:
        print(f"runward run: {exc}", file=sys.stderr)
        return 1

    def forward(signum: int, frame: FrameType | None) -> None:
        workload.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for replica in workload.replicas:
            print(
                f"runward run: {workload.deployment} pod {replica.pod} pid {replica.process.pid} "
                f"cgroup {replica.cgroup_id}",
                file=sys.stderr,
            )
        codes = workload.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        workload.close()
    return _exit_status(codes)


def cmd_sensor(args: argparse.Namespace) -> int:
    reason = sensor_unavailable_reason()
    if reason is not None:
        print(f"runward sensor cannot start: {reason}", file=sys.stderr)
        return 1
    from sensor.build import BuildError
    from sensor.daemon import SensorConfig, build_sensor
    from sensor.kernel import KernelError

    note = preflight.mount_tracefs()
    if note:
        print(f"runward sensor: {note}", file=sys.stderr)
    from runward.core.config import Settings

    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    config = SensorConfig(
        bootstrap=args.kafka or Settings().kafka,
        home=_home(),
        kubernetes=args.kubernetes if args.kubernetes is not None else in_cluster,
        dedup_window_s=args.dedup_window,
        syscall_interval_s=args.syscall_interval,
        dns_ports=tuple(args.dns_port or [53]),
        extra_watch=tuple(Path(p) for p in args.watch_cgroup or []),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        socket_read_write=not args.no_read_write_dns,
    )
    if args.node:
        config.node = args.node
    try:
        sensor = build_sensor(config)
    except (BuildError, KernelError, RuntimeError) as exc:
        print(f"runward sensor cannot start: {exc}", file=sys.stderr)
        return 1
    problem = sensor.publisher.check()
    if problem is None:
        try:
            sensor.start()
        except (KernelError, OSError) as exc:
            problem = str(exc)
    if problem is not None:
        sensor.close(flush_s=0)
        print(f"runward sensor cannot start: {problem}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    try:
        watched = ", ".join(str(p) for p in sensor.watched_paths) or "nothing yet"
        programs = ", ".join(sensor.probes.programs)
        print(
            f"runward sensor: programs {programs} attached; watching {watched}; publishing to {config.bootstrap}",
            file=sys.stderr,
            flush=True,
        )
        if args.ready_file is not None:
            _write_ready(args.ready_file, programs)
        sensor.run(stop)
    finally:
        undelivered = sensor.close()
    if undelivered:
        print(f"runward sensor: {undelivered} events were still undelivered at exit", file=sys.stderr)
    return 0


def add_commands(subparsers: Any) -> None:
    """Register `run` and `sensor` on the main CLI's subparsers."""
    run = subparsers.add_parser(
        "run",
        help="run a workload in its own cgroup, attributed to a Deployment",
        description="Start CMD as REPLICAS replicas, each in its own cgroup v2, registered so that "
        "the sensor attributes them to the Deployment and ServiceAccount.",
    )
    run.add_argument("--deployment", required=True, metavar="NS/NAME")
    run.add_argument("--service-account", required=True, metavar="SA")
    run.add_argument("--replicas", type=int, default=1)
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    run.set_defaults(func=cmd_run)

    sensor = subparsers.add_parser(
        "sensor",
        help="run the eBPF sensor in the foreground",
        description="Observe watched workloads with eBPF and publish to runward.raw.sensor until SIGINT/SIGTERM.",
    )
    sensor.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    sensor.add_argument("--node", help="node name (default NODE_NAME or the hostname)")
    k8s = sensor.add_mutually_exclusive_group()
    k8s.add_argument(
        "--kubernetes",
        dest="kubernetes",
        action="store_true",
        default=None,
        help="also watch kubepods and resolve pods with the API (default: when in a cluster)",
    )
    k8s.add_argument("--no-kubernetes", dest="kubernetes", action="store_false")
    sensor.add_argument(
        "--dedup-window",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="fold identical events of a container within this window (0 disables)",
    )
    sensor.add_argument(
        "--syscall-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often the in-kernel syscall sets are read",
    )
    sensor.add_argument(
        "--dns-port", type=int, action="append", metavar="PORT", help="UDP port carrying DNS (repeatable, default 53)"
    )
    sensor.add_argument(
        "--no-read-write-dns",
        action="store_true",
        help="do not inspect read()/write() on UDP sockets for DNS (Go's resolver uses them; they are "
        "inspected only in cgroups that connected a UDP socket to a DNS port)",
    )
    sensor.add_argument(
        "--watch-cgroup",
        action="append",
        metavar="PATH",
        help="extra cgroup v2 directory whose subtree to observe (repeatable)",
    )
    sensor.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve /metrics (Prometheus) and /metrics.json on PORT"
    )
    sensor.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for --metrics-port (0.0.0.0 in a DaemonSet, for Prometheus)",
    )
    sensor.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="write PATH once the programs are attached (a readiness probe; the first "
        "start on a node compiles the programs and can take tens of seconds)",
    )
    sensor.set_defaults(func=cmd_sensor)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("RUNWARD_LOG_LEVEL", "WARNING"))
    parser = argparse.ArgumentParser(prog="python -m sensor.cli")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
