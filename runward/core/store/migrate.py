"""Alembic, driven from code so `runward db upgrade` needs no alembic.ini in the working directory."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutOfDate(RuntimeError):
    pass


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_config(url), "head")


def check_at_head(engine: sa.Engine) -> None:
    head = ScriptDirectory.from_config(_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"store schema is at {current or 'nothing'}, code expects {head}: run `runward db upgrade`"
        )
