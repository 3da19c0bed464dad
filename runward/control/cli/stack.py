"""Running the pipeline: `runward up`, `demo`, `status`, `stage`, `api`, `broker`, `replay`, `db upgrade`."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from runward.control.cli import golive
from runward.control.cli.common import DbOpt, Failure, KafkaOpt, err, open_store, out, settings
from runward.control.cli.local_demo import show_local_enforcement

if TYPE_CHECKING:
    from runward.control.supervisor import Supervisor
    from runward.core.config import Settings

# The repository's scenarios/ (runward/control/cli/stack.py -> repository root).
BUNDLED_SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "support_agent.jsonl"
# Stages beat every HEARTBEAT_S (2 s, runward.core.stage); a few missed beats mean it is not running.
STAGE_DOWN_AFTER_S = 10.0


class StageName(StrEnum):
    ingest = "ingest"
    bom = "bom"
    profiler = "profiler"
    correlator = "correlator"
    enforcer = "enforcer"


def _stop_on_sigterm() -> None:
    """SIGTERM stops like Ctrl-C: the `finally` blocks that stop children run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _stop(sup: Supervisor) -> None:
    """Stop every child; a second Ctrl-C or SIGTERM must not cut that short and strand some."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sup.stop()


def broker(port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 9092) -> int:
    """Run the embedded Kafka-protocol broker (Tansu, memory storage) until Ctrl-C or SIGTERM."""
    from runward.control.broker import BrokerError, ensure_topics, start_broker

    config = settings()
    _stop_on_sigterm()
    try:
        proc = start_broker(port)
    except BrokerError as exc:
        raise Failure(str(exc)) from None
    bootstrap = f"127.0.0.1:{port}"
    try:
        created = ensure_topics(bootstrap, config.partitions)
        out.print(f"broker up on {bootstrap} (Tansu, memory storage); {len(created)} topics created. Ctrl-C stops it.")
        code = proc.wait()
        raise Failure(f"the broker exited with {code}")
    except KeyboardInterrupt:
        return 0
    except BrokerError as exc:
        raise Failure(str(exc)) from None
    finally:
        # Never leave the broker behind, whatever ended this command.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
                proc.wait()


def db_upgrade(kafka: KafkaOpt = None, db: DbOpt = None) -> int:
    """Apply the store's Alembic migrations."""
    import sqlalchemy.exc

    from runward.control.supervisor import redact_url
    from runward.core.store import upgrade

    config = settings(kafka, db)
    try:
        upgrade(config.db_url)
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "cannot connect"
        raise Failure(f"cannot open the store at {redact_url(config.db_url)} ({reason}): start the database") from None
    out.print(f"store at {config.db_url.split('@')[-1]} is at the latest schema")
    return 0


def run_stage(name: str, config: Settings) -> None:
    """Run one stage in the foreground: the one place that knows how a stage is started."""
    import importlib

    module = importlib.import_module(f"services.{name}.app")
    module.build(config).main()


def stage(
    name: Annotated[StageName, typer.Argument(metavar="NAME", help="the stage to run")],
    kafka: KafkaOpt = None,
    db: DbOpt = None,
) -> int:
    """Run one pipeline stage in the foreground."""
    config = settings(kafka, db)
    open_store(config.db_url)  # one line naming the URL, before Faust starts
    run_stage(name.value, config)
    return 0


def api(kafka: KafkaOpt = None, db: DbOpt = None) -> int:
    """Run the status API."""
    from runward.control.api.app import serve

    config = settings(kafka, db)
    open_store(config.db_url)
    serve(config)
    return 0


# The bundled scenario is a recording of several days replayed in seconds: the demo lets its
# recorded event times stand (a live pipeline keeps the default skew of minutes).
DEMO_CLOCK_SKEW_S = 30 * 24 * 3600


def _start(kafka: str | None, db: str | None, with_sensor: bool, max_clock_skew_s: int | None = None) -> Supervisor:
    import sqlalchemy.exc

    from runward.control.broker import BrokerError
    from runward.control.supervisor import StartError, Supervisor, redact_url

    config = settings(kafka, db)
    if max_clock_skew_s is not None:
        config.max_clock_skew_s = max_clock_skew_s
    external = bool(kafka or os.environ.get("RUNWARD_KAFKA"))
    sup = Supervisor(config, external_kafka=external)
    out.print("Starting Runward")
    try:
        sup.start(with_sensor=with_sensor)
    except (StartError, BrokerError) as exc:
        sup.stop()
        raise Failure(str(exc)) from None
    except sqlalchemy.exc.OperationalError as exc:
        sup.stop()
        reason = str(exc.orig).splitlines()[0] if exc.orig else "cannot connect"
        raise Failure(f"cannot open the store at {redact_url(config.db_url)} ({reason}): start the database") from None
    except BaseException:
        sup.stop()
        raise
    return sup


def up(
    no_sensor: Annotated[bool, typer.Option("--no-sensor", help="do not start the eBPF sensor")] = False,
    kafka: KafkaOpt = None,
    db: DbOpt = None,
) -> int:
    """Start broker, every stage, the API and the sensor; restart what dies; Ctrl-C stops all."""
    from runward.control.broker import BrokerError

    _stop_on_sigterm()
    sup = _start(kafka, db, with_sensor=not no_sensor)
    out.print("Runward is up. `runward status` shows the pipeline; Ctrl-C stops everything.")
    try:
        while True:
            time.sleep(1)
            sup.tend()
    except KeyboardInterrupt:
        out.print("\nStopping Runward")
        return 0
    except BrokerError as exc:
        raise Failure(f"{exc}; stopping Runward") from None
    finally:
        _stop(sup)


def demo(
    scenario: Annotated[Path, typer.Option(help="JSON-lines scenario to replay")] = BUNDLED_SCENARIO,
    no_sensor: Annotated[bool, typer.Option("--no-sensor", help="replay only; do not drive live workloads")] = False,
    kafka: KafkaOpt = None,
    db: DbOpt = None,
) -> int:
    """Start everything, replay the bundled scenario, show the attack story, stop."""
    from runward.control.replay import ReplayError, store_barrier
    from runward.core.store import Store

    _stop_on_sigterm()
    sup = _start(kafka, db, with_sensor=not no_sensor, max_clock_skew_s=DEMO_CLOCK_SKEW_S)
    try:
        out.print(f"Replaying {scenario}")
        try:
            sent = _replay_with_progress(scenario, sup.config.kafka, wait_ingested=store_barrier(sup.config.db_url))
        except ReplayError as exc:
            raise Failure(str(exc), code=2) from None
        out.print(f"  {sent} raw records published")
        store = Store(sup.config.db_url)
        story = _wait_story(store, timeout=90)
        if story is None:
            raise Failure(f"no attack story within 90 s; see the logs in {sup.logs}")
        _show_story(story)
        if any(s.name == "sensor" for s in sup.services):
            _live_demo(sup, store)
        golive.show_readiness(store, sup.config.audit_soak_s)
        _show_status(store)
    finally:
        out.print("Stopping Runward")
        _stop(sup)
    _stop_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    show_local_enforcement(sup.config.home, with_sensor=not no_sensor)
    return 0


LIVE_AGENT = """
import subprocess, sys, urllib.request
subprocess.run(["/bin/true"])
for _ in range(3):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2).read()
    except Exception:
        pass
"""


def _live_demo(sup: Supervisor, store: Any) -> None:
    """Drive a real workload under the eBPF sensor and show what its APD learnt."""
    from runward.control.wait import WaitTimeout, wait_until
    from sensor.workloads import run_workload

    os.environ["RUNWARD_HOME"] = str(sup.config.home.resolve())
    url = f"http://{sup.config.api_host}:{sup.config.api_port}/healthz"
    out.print(
        "Running a live workload under the eBPF sensor: runward run --deployment agents/live-demo "
        "--service-account live-demo --replicas 2 -- python3 agent.py"
    )
    with run_workload(
        "agents/live-demo", "live-demo", 2, [sys.executable, "-c", LIVE_AGENT, url], home=sup.config.home.resolve()
    ) as workload:
        workload.wait(timeout=30)

    def learnt() -> dict[str, Any] | None:
        apd: dict[str, Any] | None = store.latest_artifact("agents/live-demo", "apd")
        if apd and apd["behaviours"].get("egress") and apd["behaviours"].get("syscalls") and len(apd["pods_seen"]) == 2:
            return apd
        return None

    try:
        apd = wait_until(
            learnt,
            timeout=45,
            interval=0.5,
            failure="the profiler did not publish the APD of agents/live-demo",
            status="waiting for the profiler to publish the coalesced file and syscall sets",
        )
    except WaitTimeout:
        apd = store.latest_artifact("agents/live-demo", "apd")
    if not apd:
        err.print("  the sensor reported nothing for agents/live-demo; see the sensor log")
        return
    b = apd["behaviours"]
    out.print(f"  APD of agents/live-demo, revision {apd['revision']}, pods {', '.join(apd['pods_seen'])}:")
    out.print(f"    exec {', '.join(x.removeprefix('exec:') for x in b.get('exec', []))}")
    out.print(f"    egress {', '.join(x.removeprefix('egress:') for x in b.get('egress', []))}")
    out.print(f"    {len(b.get('syscalls', []))} syscalls, {len(b.get('file', []))} files")
    out.print()


def _wait_story(store: Any, timeout: float) -> dict[str, Any] | None:
    """The top attack story once its version has held for 4 s (the correlator settled)."""
    from runward.control.wait import WaitTimeout, wait_until

    best: dict[str, Any] | None = None
    settled_at: float | None = None

    def settled() -> dict[str, Any] | None:
        nonlocal best, settled_at
        stories = [s for s in store.stories() if s["status"] == "potential compromise"]
        if not stories:
            return None
        top = max(stories, key=lambda s: (s["version"], s["severity"]))
        if best and top["version"] == best["version"]:
            settled_at = settled_at or time.monotonic()
            return best if time.monotonic() - settled_at > 4 else None
        best, settled_at = top, None
        return None

    try:
        return wait_until(
            settled, timeout=timeout, interval=0.5, failure="no attack story", status="waiting for the attack story"
        )
    except WaitTimeout:
        return best


def _show_story(story: dict[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", f"{story['status']}   severity {story['severity']}/5")
    table.add_row("surfaces", ", ".join(story["surfaces"]))
    table.add_row("techniques", ", ".join(t["uid"] + " " + t["name"] for t in story["techniques"]))
    table.add_row("what happened", "\n".join(story["narrative"]))
    table.add_row(
        "OCSF",
        f"class_uid {story['ocsf']['class_uid']} ({story['ocsf']['class_name']}), "
        f"{len(story['ocsf']['finding_info'].get('attacks', []))} attacks",
    )
    out.print()
    out.print(Text.assemble((f"ATTACK STORY {story['story_id']}", "bold"), f"  {story['deployment']}"))
    out.print(table)
    out.print()


def _stage_up(row: dict[str, Any], now: datetime) -> bool:
    beat = row["updated_at"]
    return beat is not None and (now - beat).total_seconds() <= STAGE_DOWN_AFTER_S


def _stage_state(row: dict[str, Any], now: datetime) -> Text:
    if _stage_up(row, now):
        return Text("up", style="green")
    if row["updated_at"] is None:
        return Text("down (never beat)", style="red")
    return Text(f"down (no heartbeat for {(now - row['updated_at']).total_seconds():.0f} s)", style="red")


def _show_status(store: Any) -> None:
    now = datetime.now(timezone.utc)
    stages = Table(title="stages", title_justify="left")
    for name, justify in (("stage", "left"), ("state", "left"), ("processed", "right"), ("lag", "right")):
        stages.add_column(name, justify=justify)  # type: ignore[arg-type]
    stages.add_column("dead", justify="right")
    stages.add_column("lost", justify="right")  # in flight when a broker restart lost its records
    stages.add_column("last record")
    for row in store.stage_health():
        last = row["last_record_at"].isoformat(timespec="seconds") if row["last_record_at"] else "-"
        # A stopped stage's last lag is stale: showing 0 would say it is caught up.
        lag = str(row["lag"]) if _stage_up(row, now) else "-"
        stages.add_row(
            row["stage"],
            _stage_state(row, now),
            str(row["processed"]),
            lag,
            str(row["dead_letters"]),
            str(row.get("lost_in_flight") or 0),
            last,
        )
    out.print(stages)
    lost = sum(int(row.get("lost_in_flight") or 0) for row in store.stage_health())
    if lost:
        out.print(
            f"  about {lost} records were lost in flight by broker restarts (the embedded broker keeps "
            "records in memory only; point RUNWARD_KAFKA at a real Kafka for anything that must keep data)"
        )
    agents = Table(title="agents", title_justify="left")
    for name in ("agent", "service account", "APD rev", "window", "stories"):
        agents.add_column(name, justify="right" if name in ("APD rev", "stories") else "left")
    stories = store.stories()
    for agent in store.agents():
        apd = store.latest_artifact(agent["deployment"], "apd") or {}
        n = sum(1 for s in stories if s["deployment"] == agent["deployment"])
        agents.add_row(
            agent["deployment"],
            agent["service_account"] or "-",
            str(apd.get("revision", "-")),
            str(apd.get("window_status", "-")),
            str(n),
        )
    out.print(agents)


def status(kafka: KafkaOpt = None, db: DbOpt = None) -> int:
    """A short table of stages (up or down, processed, lag, dead letters) and agents."""
    _show_status(open_store(settings(kafka, db).db_url))
    return 0


def _replay_with_progress(path: Path, bootstrap: str, **kwargs: Any) -> int:
    from runward.control.replay import replay

    with Progress(
        TextColumn("  replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("replay", total=None)

        def advance(sent: int, total: int) -> None:
            bar.update(task, completed=sent, total=total)

        return replay(path, bootstrap, advance=advance, progress=err.print, **kwargs)


def replay_command(
    file: Annotated[Path, typer.Argument(help="JSON lines of raw records (and barrier lines)")],
    keep_time: Annotated[bool, typer.Option("--keep-time", help="do not rebase timestamps to now")] = False,
    no_barrier: Annotated[bool, typer.Option("--no-barrier", help="ignore barrier lines (store not shared)")] = False,
    kafka: KafkaOpt = None,
    db: DbOpt = None,
) -> int:
    """Publish recorded raw events (JSON lines)."""
    from runward.control.broker import BrokerError, require_kafka
    from runward.control.replay import ReplayError, store_barrier

    config = settings(kafka, db)
    barrier = None
    if not no_barrier:
        open_store(config.db_url)  # one line naming the URL when there is no store yet
        barrier = store_barrier(config.db_url)
    try:
        require_kafka(config.kafka)
    except BrokerError as exc:
        raise Failure(str(exc)) from None
    try:
        sent = _replay_with_progress(file, config.kafka, rebase=not keep_time, wait_ingested=barrier)
    except ReplayError as exc:
        raise Failure(str(exc), code=2) from None
    out.print(f"{sent} records published to {config.kafka}")
    return 0


def register(app: typer.Typer) -> None:
    app.command(help="start broker, every stage, the API and the sensor")(up)
    app.command(help="up + replay the bundled scenario + show the attack story")(demo)
    app.command("replay", help="publish recorded raw events (JSON lines)")(replay_command)
    app.command(help="a short table of stages and agents")(status)
    app.command(help="run one pipeline stage in the foreground")(stage)
    app.command(help="run the status API")(api)
    app.command(help="run the embedded Kafka-protocol broker (Tansu, memory storage)")(broker)
    db = typer.Typer(help="store maintenance", no_args_is_help=True)
    db.command("upgrade", help="apply the store's Alembic migrations")(db_upgrade)
    app.add_typer(db, name="db")
