"""The `runward` command: a Typer app with one module per command group.

stack (up, demo, status, stage, api, broker, replay, db), posture (reconcile), observe
(declare, gateway, otlp, sensor), golive (readiness, promote, waive, history) and enforce
(run [--enforce], prove).
A group module exposes `register(app)`; a sub-app with its own commands (`runward NAME ...`) goes in SUB_APPS.
"""

from __future__ import annotations

import sys

import typer

from runward.control.cli import detector, enforce, evaluate, evidence, golive, observe, posture, stack, stories
from runward.control.cli.common import Failure

app = typer.Typer(
    name="runward",
    help="Runtime security pipeline for AI agents: AI-BOM, APD baselines, attack stories, policies.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks are for bugs; operational errors are one line (Failure). Never print locals:
    # they hold tokens and database URLs.
    pretty_exceptions_show_locals=False,
)

for group in (stack, posture, observe, golive, evidence, evaluate, enforce):
    group.register(app)

# Sub-apps, each a `typer.Typer()` mounted as `runward NAME ...`. To add one, import its
# module here and append (app, name, help).
SUB_APPS: list[tuple[typer.Typer, str, str]] = [
    (detector.app, "detector", "train and evaluate the prompt-injection detector ingest uses"),
    (stories.app, "stories", "work attack stories: list, show, acknowledge, resolve, reopen (through the API)"),
]

for sub_app, name, help_text in SUB_APPS:
    app.add_typer(sub_app, name=name, help=help_text)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (the console script passes it to sys.exit)."""
    try:
        result = app(args=argv, prog_name="runward", standalone_mode=False)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM in up/demo/broker) after the children were stopped
        return 130
    except typer.Exit as exc:  # --help, or a command's own typer.Exit
        return int(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # a usage error: typer prints it with the usage line
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return int(exc.exit_code)
    return int(result or 0)
