"""CLI hooks: `runward run` and `runward sensor`.

The main CLI calls `add_commands(app)` with its Typer app; `python -m sensor.cli` offers
the same commands on their own.
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
from typing import TYPE_CHECKING, Annotated

import typer

from sensor import preflight

if TYPE_CHECKING:
    from sensor.daemon import SensorConfig


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


def _sensor_config(args: argparse.Namespace) -> SensorConfig:
    from runward.core.config import Settings
    from sensor.daemon import SensorConfig

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
    return config


def cmd_sensor(args: argparse.Namespace) -> int:
    reason = sensor_unavailable_reason()
    if reason is not None:
        print(f"runward sensor cannot start: {reason}", file=sys.stderr)
        return 1
    from sensor.build import BuildError
    from sensor.daemon import build_sensor
    from sensor.kernel import KernelError

    note = preflight.mount_tracefs()
    if note:
        print(f"runward sensor: {note}", file=sys.stderr)
    from runward.core.kafka import bootstrap_reachable

    config = _sensor_config(args)
    if not bootstrap_reachable(config.bootstrap):
        print(
            f"runward sensor cannot start: Kafka at {config.bootstrap} does not answer; start `runward broker`, "
            "or point --kafka / RUNWARD_KAFKA at a running cluster",
            file=sys.stderr,
        )
        return 1
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


# Options after `--` are the workload's, not ours.
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def run_command(
    deployment: Annotated[str, typer.Option(metavar="NS/NAME", help="the Deployment the replicas belong to")],
    service_account: Annotated[str, typer.Option(metavar="SA", help="the ServiceAccount they run as")],
    replicas: Annotated[int, typer.Option(help="how many replicas (one cgroup each)")] = 1,
    cmd: Annotated[list[str] | None, typer.Argument(metavar="-- CMD ...", help="the workload's command")] = None,
) -> int:
    """Start CMD as REPLICAS replicas, each in its own cgroup v2, registered so that the sensor
    attributes them to the Deployment and ServiceAccount."""
    args = argparse.Namespace(deployment=deployment, service_account=service_account, replicas=replicas, cmd=cmd or [])
    return cmd_run(args)


def sensor_command(
    kafka: Annotated[
        str | None, typer.Option(metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    ] = None,
    node: Annotated[str | None, typer.Option(help="node name (default NODE_NAME or the hostname)")] = None,
    kubernetes: Annotated[
        bool | None,
        typer.Option(
            "--kubernetes/--no-kubernetes",
            help="also watch kubepods and resolve pods with the API (default: when in a cluster)",
            show_default=False,
        ),
    ] = None,
    dedup_window: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="fold identical events of a container within this window (0 disables)"),
    ] = 1.0,
    syscall_interval: Annotated[
        float, typer.Option(metavar="SECONDS", help="how often the in-kernel syscall sets are read")
    ] = 1.0,
    dns_port: Annotated[
        list[int] | None, typer.Option(metavar="PORT", help="UDP port carrying DNS (repeatable, default 53)")
    ] = None,
    no_read_write_dns: Annotated[
        bool,
        typer.Option(
            "--no-read-write-dns",
            help="do not inspect read()/write() on UDP sockets for DNS (Go's resolver uses them; they are "
            "inspected only in cgroups that connected a UDP socket to a DNS port)",
        ),
    ] = False,
    watch_cgroup: Annotated[
        list[Path] | None,
        typer.Option(metavar="PATH", help="extra cgroup v2 directory whose subtree to observe (repeatable)"),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(metavar="PORT", help="serve /metrics (Prometheus) and /metrics.json on PORT")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="address for --metrics-port (0.0.0.0 in a DaemonSet, for Prometheus)")
    ] = "127.0.0.1",
    ready_file: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="write PATH once the programs are attached (a readiness probe; the first start on a node "
            "compiles the programs and can take tens of seconds)",
        ),
    ] = None,
) -> int:
    """Observe watched workloads with eBPF and publish to runward.raw.sensor until SIGINT/SIGTERM."""
    args = argparse.Namespace(
        kafka=kafka,
        node=node,
        kubernetes=kubernetes,
        dedup_window=dedup_window,
        syscall_interval=syscall_interval,
        dns_port=dns_port or None,
        no_read_write_dns=no_read_write_dns,
        watch_cgroup=watch_cgroup or None,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        ready_file=ready_file,
    )
    return cmd_sensor(args)


def add_commands(app: typer.Typer) -> None:
    """Register `run` and `sensor` on a Typer app (the main CLI's, or this module's own)."""
    app.command(
        "run", help="run a workload in its own cgroup, attributed to a Deployment", context_settings=PASSTHROUGH
    )(run_command)
    app.command("sensor", help="run the eBPF sensor in the foreground")(sensor_command)


app = typer.Typer(name="python -m sensor.cli", no_args_is_help=True, add_completion=False)
add_commands(app)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("RUNWARD_LOG_LEVEL", "WARNING"))
    try:
        result = app(args=argv, prog_name="python -m sensor.cli", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        return int(exc.exit_code)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
