"""What every command group shares: the --kafka/--db options, settings, one-line failures,
the store opened with an actionable error, and the consoles."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from runward.core.config import Settings

# Results on stdout, progress and notes on stderr. No markup: text holds paths, URLs and
# deployment names, never rich tags; lines are not wrapped, so scripts can grep them.
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

KafkaOpt = Annotated[
    str | None, typer.Option("--kafka", metavar="BOOTSTRAP", help="bootstrap servers of Kafka (env RUNWARD_KAFKA)")
]
DbOpt = Annotated[
    str | None, typer.Option("--db", metavar="URL", help="SQLAlchemy URL of the store (env RUNWARD_DB; default SQLite)")
]


class Failure(Exception):
    """An operational error a person can act on: printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings(kafka: str | None = None, db: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if kafka:
        overrides["kafka"] = kafka
    if db:
        overrides["db"] = db
    return Settings(**overrides)


def open_store(db_url: str) -> Any:
    """The store, or a Failure naming its URL and the command that creates or migrates it."""
    import sqlalchemy.exc

    from runward.control.supervisor import redact_url
    from runward.core.store import SchemaOutOfDate, Store

    where = redact_url(db_url)
    if db_url.startswith("sqlite:///"):
        from pathlib import Path

        path = Path(db_url.removeprefix("sqlite:///"))
        if not path.exists():
            raise Failure(f"no Runward store at {where}: run `runward db upgrade` (or `runward up`) to create it")
    try:
        return Store(db_url)
    except SchemaOutOfDate as exc:
        raise Failure(f"store at {where}: {exc}") from None
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "cannot connect"
        raise Failure(
            f"cannot open the Runward store at {where} ({reason}): start the database, then run `runward db upgrade`"
        ) from None
