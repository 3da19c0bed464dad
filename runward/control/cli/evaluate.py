"""`runward eval SCENARIOS...`: replay the scenario library through the real pipeline, print
expected vs got per scenario with the latency from its last event to its story; exit 0 only if
every scenario passes."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from runward.control.cli.common import DbOpt, Failure, KafkaOpt, out, settings

if TYPE_CHECKING:
    from runward.control.eval import Outcome
    from runward.core.config import Settings


def table(outcomes: list[Outcome]) -> Table:
    grid = Table(title="runward eval", show_lines=False)
    for column in ("scenario", "kind", "expected", "got", "result", "latency"):
        grid.add_column(column, overflow="fold")
    for o in outcomes:
        sc = o.scenario
        latency = "-" if o.latency_s is None else f"{o.latency_s:.1f} s"
        result = "pass" if o.passed else "FAIL: " + "; ".join(o.problems)
        grid.add_row(
            sc.name,
            sc.kind,
            "\n".join(e.text() for e in sc.expected) or "no story",
            "\n".join(o.got) or "no story",
            result,
            latency,
        )
    return grid


def start_pipeline(config: Settings, external_kafka: bool) -> object:
    """Broker (unless external) and the five stages, each as `runward stage NAME` (the API too)."""
    from runward.control.broker import BrokerError
    from runward.control.supervisor import StartError, Supervisor

    sup = Supervisor(config, external_kafka=external_kafka)
    try:
        sup.start(with_sensor=False)
    except (StartError, BrokerError) as exc:
        sup.stop()
        raise Failure(str(exc)) from None
    except BaseException:
        sup.stop()
        raise
    return sup


def evaluate(
    paths: Annotated[list[Path], typer.Argument(help="scenario files or folders (e.g. scenarios/library)")],
    kafka: KafkaOpt = None,
    db: DbOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the results as JSON to this file")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the expected stories")] = 120,
) -> int:
    """Replay scenarios through a fresh pipeline (embedded broker unless --kafka) and check each outcome."""
    from runward.control.broker import free_port
    from runward.control.eval import EVAL_CLOCK_SKEW_S, ScenarioError, run_eval, scenario_files

    try:
        files = scenario_files(paths)
    except ScenarioError as exc:
        raise Failure(str(exc), code=2) from None
    home = Path(tempfile.mkdtemp(prefix="runward-eval-"))
    try:
        config = settings(kafka, db)
        config.home = home
        if not kafka:
            config.kafka = f"127.0.0.1:{free_port()}"
        config.api_port, config.otlp_port = free_port(), free_port()
        # Scenarios are days of recorded time replayed in seconds: their event times must stand.
        config.max_clock_skew_s = EVAL_CLOCK_SKEW_S
        sup = start_pipeline(config, external_kafka=bool(kafka))
        try:
            outcomes = run_eval(files, config, timeout_s=timeout)
        except ScenarioError as exc:
            raise Failure(str(exc), code=2) from None
        finally:
            sup.stop()  # type: ignore[attr-defined]
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    # Wide enough for one line per story: the table is read in CI logs and pasted into notes.
    Console(highlight=False, markup=False, width=max(out.width, 190)).print(table(outcomes))
    passed = sum(o.passed for o in outcomes)
    out.print(f"{passed}/{len(outcomes)} scenarios passed")
    if passed == len(outcomes):
        shutil.rmtree(home, ignore_errors=True)
    else:
        out.print(f"the pipeline's logs and store are kept in {home}")
    if json_out:
        json_out.write_text(json.dumps([o.as_dict() for o in outcomes], indent=2))
    return 0 if passed == len(outcomes) else 1


def register(app: typer.Typer) -> None:
    app.command("eval", help="replay the scenario library through the pipeline; expected vs got")(evaluate)
