"""Fixtures for the status API: a migrated, seeded store on both backends, the real broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.core.config import Settings
from runward.core.store import Store, upgrade

from .support import PROMOTION_KEY, TOKEN_SPEC, SpyPublisher, make_client, seed


@pytest.fixture
def store(db_url: str) -> Store:
    upgrade(db_url)
    store = Store(db_url)
    seed(store)
    return store


@pytest.fixture
def publisher(kafka_bootstrap: str) -> SpyPublisher:
    return SpyPublisher(KafkaPublisher(kafka_bootstrap, timeout_s=15))


@pytest.fixture
def client(store: Store, publisher: SpyPublisher, kafka_bootstrap: str) -> Iterator[TestClient]:
    app = create_app(
        Settings(api_tokens=TOKEN_SPEC, kafka=kafka_bootstrap, promotion_key=PROMOTION_KEY),
        store=store,
        publisher=publisher,
    )
    with make_client(app) as client:
        yield client
    store.engine.dispose()
