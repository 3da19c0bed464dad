from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from runward.control.broker import ensure_topics, free_port, start_broker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-protocol broker (embedded Tansu) with every Runward topic created."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    port = free_port()
    proc = start_broker(port, log)
    bootstrap = f"127.0.0.1:{port}"
    ensure_topics(bootstrap, partitions=4)
    try:
        yield bootstrap
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """Both store backends: the embedded SQLite default and PostgreSQL on 127.0.0.1:5432."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runward.db"
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    request.addfinalizer(lambda: _drop_schema(admin, schema))
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


def _drop_schema(admin: object, schema: str) -> None:
    import sqlalchemy as sa

    assert isinstance(admin, sa.engine.Engine)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
