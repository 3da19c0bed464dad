"""The `runward` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from runward.core.config import Settings

BUNDLED_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "support_agent.jsonl"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "kafka", None):
        overrides["kafka"] = args.kafka
    if getattr(args, "db", None):
        overrides["db"] = args.db
    return Settings(**overrides)


def cmd_broker(args: argparse.Namespace) -> int:
    from runward.control.broker import ensure_topics, start_broker

    config = Settings()
    proc = start_broker(args.port)
    bootstrap = f"127.0.0.1:{args.port}"
    created = ensure_topics(bootstrap, config.partitions)
    print(f"broker up on {bootstrap} (Tansu, memory storage); {len(created)} topics created. Ctrl-C stops it.")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=10)
        return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from runward.core.store import upgrade

    config = _settings(args)
    upgrade(config.db_url)
    print(f"store at {config.db_url.split('@')[-1]} is at the latest schema")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(f"services.{args.name}.app")
    module.build(_settings(args)).main()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from runward.control.api.app import serve

    serve(_settings(args))
    return 0


def _up(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from runward.control.supervisor import Supervisor

    config = _settings(args)
    external = bool(args.kafka or os.environ.get("RUNWARD_KAFKA"))
    sup = Supervisor(config, external_kafka=external)
    print("Starting Runward")
    try:
        sup.start(with_sensor=not args.no_sensor)
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        sup.stop()
        raise SystemExit(1) from None
    return sup


def cmd_up(args: argparse.Namespace) -> int:
    sup = _up(args)
    print("Runward is up. `runward status` shows the pipeline; Ctrl-C stops everything.")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            time.sleep(1)
            for service in sup.exited():
                print(f"  {service.name} exited with {service.proc.returncode}; see {service.log}")
                sup.services.remove(service)
    except KeyboardInterrupt:
        print("\nStopping Runward")
        sup.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Start everything, replay the bundled scenario, show the attack story, stop."""
    from runward.control.replay import replay, store_barrier
    from runward.core.store import Store

    sup = _up(args)
    try:
        print(f"Replaying {args.scenario}")
        sent = replay(Path(args.scenario), sup.config.kafka, wait_ingested=store_barrier(sup.config.db_url))
        print(f"  {sent} raw records published")
        store = Store(sup.config.db_url)
        story = _wait_story(store, timeout=90)
        if story is None:
            print("error: no attack story within 90 s; see the logs in", sup.logs, file=sys.stderr)
            return 1
        _show_story(story)
        if any(s.name == "sensor" for s in sup.services):
            _live_demo(sup, store)
        _show_status(store)
        return 0
    finally:
        print("Stopping Runward")
        sup.stop()


LIVE_AGENT = """
import subprocess, sys, urllib.request
subprocess.run(["/bin/true"])
for _ in range(3):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2).read()
    except Exception:
        pass
"""


def _live_demo(sup: Any, store: Any) -> None:
    """Drive a real workload under the eBPF sensor and show what its APD learnt."""
    from sensor.workloads import run_workload

    os.environ["RUNWARD_HOME"] = str(sup.config.home.resolve())
    url = f"http://{sup.config.api_host}:{sup.config.api_port}/healthz"
    print(
        "Running a live workload under the eBPF sensor: runward run --deployment agents/live-demo "
        "--service-account live-demo --replicas 2 -- python3 agent.py"
    )
    with run_workload(
        "agents/live-demo", "live-demo", 2, [sys.executable, "-c", LIVE_AGENT, url], home=sup.config.home.resolve()
    ) as workload:
        workload.wait(timeout=30)
    print("  waiting for the profiler to publish the coalesced file and syscall sets ...")
    deadline = time.monotonic() + 45
    apd: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        apd = store.latest_artifact("agents/live-demo", "apd")
        if apd and apd["behaviours"].get("egress") and apd["behaviours"].get("syscalls") and len(apd["pods_seen"]) == 2:
            break
        time.sleep(0.5)
    if not apd:
        print("  the sensor reported nothing for agents/live-demo; see the sensor log", file=sys.stderr)
        return
    b = apd["behaviours"]
    print(f"  APD of agents/live-demo, revision {apd['revision']}, pods {', '.join(apd['pods_seen'])}:")
    print(f"    exec {', '.join(x.removeprefix('exec:') for x in b.get('exec', []))}")
    print(f"    egress {', '.join(x.removeprefix('egress:') for x in b.get('egress', []))}")
    print(f"    {len(b.get('syscalls', []))} syscalls, {len(b.get('file', []))} files")
    print()


def _wait_story(store: Any, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    best: dict[str, Any] | None = None
    settled_at = None
    while time.monotonic() < deadline:
        stories = [s for s in store.stories() if s["status"] == "potential compromise"]
        if stories:
            top = max(stories, key=lambda s: (s["version"], s["severity"]))
            if best and top["version"] == best["version"]:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at > 4:
                    return best
            else:
                best, settled_at = top, None
        time.sleep(0.5)
    return best


def _show_story(story: dict[str, Any]) -> None:
    print()
    print(f"ATTACK STORY {story['story_id']}  {story['deployment']}")
    print(f"  status:     {story['status']}   severity {story['severity']}/5")
    print(f"  surfaces:   {', '.join(story['surfaces'])}")
    print(f"  techniques: {', '.join(t['uid'] + ' ' + t['name'] for t in story['techniques'])}")
    print("  what happened:")
    for line in story["narrative"]:
        print(f"    {line}")
    print(
        f"  OCSF: class_uid {story['ocsf']['class_uid']} ({story['ocsf']['class_name']}), "
        f"{len(story['ocsf']['finding_info'].get('attacks', []))} attacks"
    )
    print()


def _show_status(store: Any) -> None:
    print(f"{'stage':<12}{'processed':>10}{'lag':>6}{'dead':>6}  last record")
    for row in store.stage_health():
        last = row["last_record_at"].isoformat(timespec="seconds") if row["last_record_at"] else "-"
        print(f"{row['stage']:<12}{row['processed']:>10}{row['lag']:>6}{row['dead_letters']:>6}  {last}")
    print()
    print(f"{'agent':<28}{'service account':<18}{'APD rev':>8}  window     stories")
    stories = store.stories()
    for agent in store.agents():
        apd = store.latest_artifact(agent["deployment"], "apd") or {}
        n = sum(1 for s in stories if s["deployment"] == agent["deployment"])
        print(
            f"{agent['deployment']:<28}{agent['service_account'] or '-':<18}{apd.get('revision', '-'):>8}  "
            f"{apd.get('window_status', '-'):<10} {n}"
        )


def cmd_status(args: argparse.Namespace) -> int:
    from runward.core.store import SchemaOutOfDate, Store

    config = _settings(args)
    try:
        store = Store(config.db_url)
    except SchemaOutOfDate as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _show_status(store)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from runward.control.replay import ReplayError, replay, store_barrier

    config = _settings(args)
    try:
        barrier = store_barrier(config.db_url) if not args.no_barrier else None
        sent = replay(Path(args.file), config.kafka, rebase=not args.keep_time, wait_ingested=barrier)
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{sent} records published to {config.kafka}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from jobs.reconciliation.job import ReconcileError, ReconcileInputs, reconcile
    from runward.core.store import SchemaOutOfDate

    config = _settings(args)
    inputs = ReconcileInputs(
        deployment=args.deployment,
        rbac=[Path(p) for p in args.rbac],
        audit=[Path(p) for p in args.audit or []],
        service_account=args.service_account,
        iam=[Path(p) for p in args.iam or []],
        cloudtrail=[Path(p) for p in args.cloudtrail or []],
        aws_role_arn=args.aws_role_arn,
        deployments=[Path(p) for p in args.deployments or []],
    )
    try:
        result = reconcile(inputs, config, publish=not args.no_publish)
    except (ReconcileError, SchemaOutOfDate) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    k8s = result.report.kubernetes
    print(
        f"{args.deployment}: Kubernetes RBAC granted {k8s.granted_count}, used {k8s.used_count}, "
        f"unused {k8s.unused_count}"
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = args.deployment.replace("/", "_")
        (out / f"{stem}.reconciliation.json").write_text(result.report.model_dump_json(indent=2))
        (out / f"{stem}.reconciliation.md").write_text(result.markdown)
        (out / f"{stem}.reconciliation.html").write_text(result.html)
        print(f"report written to {out}/{stem}.reconciliation.{{json,md,html}}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runward", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--kafka", help="bootstrap servers of an external Kafka (env RUNWARD_KAFKA)")
        p.add_argument("--db", help="SQLAlchemy URL of the store (env RUNWARD_DB; default SQLite)")
        return p

    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu, memory storage)")
    p.add_argument("--port", type=int, default=9092)
    p.set_defaults(func=cmd_broker)
    p = common(sub.add_parser("up", help="start broker, every stage, the API and the sensor"))
    p.add_argument("--no-sensor", action="store_true", help="do not start the eBPF sensor")
    p.set_defaults(func=cmd_up)
    p = common(sub.add_parser("demo", help="up + replay the bundled scenario + show the attack story"))
    p.add_argument("--scenario", default=str(BUNDLED_SCENARIO))
    p.add_argument("--no-sensor", action="store_true", help="replay only; do not drive live workloads")
    p.set_defaults(func=cmd_demo)
    p = common(sub.add_parser("replay", help="publish recorded raw events (JSON lines)"))
    p.add_argument("file")
    p.add_argument("--keep-time", action="store_true", help="do not rebase timestamps to now")
    p.add_argument("--no-barrier", action="store_true", help="ignore barrier lines (store not shared)")
    p.set_defaults(func=cmd_replay)
    p = common(sub.add_parser("status", help="a short table of stages and agents"))
    p.set_defaults(func=cmd_status)
    p = common(sub.add_parser("stage", help="run one pipeline stage in the foreground"))
    p.add_argument("name", choices=["ingest", "bom", "profiler", "correlator", "enforcer"])
    p.set_defaults(func=cmd_stage)
    p = common(sub.add_parser("api", help="run the status API"))
    p.set_defaults(func=cmd_api)
    p = common(sub.add_parser("reconcile", help="granted (RBAC/IAM) vs used (audit/CloudTrail) report for an agent"))
    p.add_argument("--deployment", required=True, help="the agent, namespace/name")
    p.add_argument("--rbac", action="append", required=True, help="RBAC manifests (file or directory; repeat)")
    p.add_argument(
        "--audit",
        action="append",
        help="audit.k8s.io/v1 log (file or dir; repeat); default: every audit event on runward.raw.k8s",
    )
    p.add_argument("--service-account", help="defaults to the one the pipeline saw the agent run as")
    p.add_argument("--iam", action="append", help="AWS IAM policy documents attached to the agent's role")
    p.add_argument("--cloudtrail", action="append", help="CloudTrail logs (Records[])")
    p.add_argument("--aws-role-arn", help="the agent's IAM role, to pick its CloudTrail calls")
    p.add_argument("--deployments", action="append", help="Deployment manifests, for ServiceAccount posture")
    p.add_argument("--out", help="also write JSON, Markdown and HTML here (to attach to the ticket)")
    p.add_argument("--no-publish", action="store_true", help="store only, do not publish to Kafka")
    p.set_defaults(func=cmd_reconcile)
    db = sub.add_parser("db", help="store maintenance").add_subparsers(dest="db_command", required=True)
    p = common(db.add_parser("upgrade", help="apply the store's Alembic migrations"))
    p.set_defaults(func=cmd_db_upgrade)
    from runward.control.edge_commands import add_commands as bom_commands
    from sensor.cli import add_commands as sensor_commands

    sensor_commands(sub)  # run, sensor
    bom_commands(sub)  # declare, gateway, otlp
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
