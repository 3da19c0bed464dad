"""The go-live history chain and waivers against both store backends."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import sqlalchemy as sa

from runward.core.contracts import utcnow
from runward.core.store import Store, upgrade
from runward.core.store import history as golive
from runward.core.store.schema import HistoryRow


def _store(db_url: str) -> Store:
    upgrade(db_url)
    return Store(db_url)


def _fill(store: Store) -> None:
    golive.append(
        store, "shop/bot", golive.HistoryKind.PROMOTION, "Bob <bob@example.com>", "window done", {"to": "audit"}
    )
    golive.add_waiver(
        store,
        "shop/bot",
        "service_account",
        "Ann <ann@example.com>",
        "SA split next sprint",
        utcnow() + timedelta(days=7),
    )
    golive.append(store, "shop/other", golive.HistoryKind.STORY_RESOLUTION, "Ann", "false positive", {"story": "s1"})


def test_chain_links_and_verifies(db_url: str) -> None:
    store = _store(db_url)
    assert golive.verify(store).ok and golive.verify(store).entries == 0
    _fill(store)
    rows = golive.entries(store)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev_hash"] == golive.GENESIS
    assert rows[1]["prev_hash"] == rows[0]["hash"] and rows[2]["prev_hash"] == rows[1]["hash"]
    assert [r["kind"] for r in rows] == ["promotion", "waiver", "story_resolution"]
    result = golive.verify(store)
    assert result.ok and result.entries == 3 and result.head == rows[2]["hash"]
    assert [r["seq"] for r in golive.entries(store, deployment="shop/bot")] == [1, 2]
    [waiver] = golive.waivers(store, "shop/bot")
    assert (waiver["check"], waiver["actor"], waiver["history_seq"]) == ("service_account", "Ann <ann@example.com>", 2)
    assert waiver["until"] > utcnow()


def test_editing_a_past_row_is_detected(db_url: str) -> None:
    store = _store(db_url)
    _fill(store)
    with store.session() as s:
        s.execute(sa.update(HistoryRow).where(HistoryRow.seq == 1).values(reason="approved by the CISO"))
    result = golive.verify(store)
    assert not result.ok and result.broken_at == 1
    assert "edited after it was written" in (result.problem or "")


def test_rewriting_a_row_with_its_own_hash_breaks_the_next_link(db_url: str) -> None:
    store = _store(db_url)
    _fill(store)
    with store.session() as s:
        row = s.get(HistoryRow, 2)
        assert row is not None
        row.actor = "Mallory"
        row.hash = golive.row_hash(row)  # a careful forger recomputes the edited row's hash
    result = golive.verify(store)
    assert not result.ok and result.broken_at == 3 and "does not link" in (result.problem or "")


def test_deleting_a_row_is_detected(db_url: str) -> None:
    store = _store(db_url)
    _fill(store)
    with store.session() as s:
        s.execute(sa.delete(HistoryRow).where(HistoryRow.seq == 3))
    assert golive.verify(store).ok  # the tail: only an outside copy of the head shows it
    golive.append(store, "shop/bot", golive.HistoryKind.PROMOTION, "Bob", "r", {})
    with store.session() as s:
        s.execute(sa.update(HistoryRow).where(HistoryRow.seq == 3).values(seq=30))
    result = golive.verify(store)
    assert not result.ok and result.broken_at == 30 and "missing" in (result.problem or "")


def test_export_is_json_lines_of_the_chain(db_url: str) -> None:
    store = _store(db_url)
    _fill(store)
    lines = list(golive.export_jsonl(store))
    assert len(lines) == 3 and all(line.endswith("\n") for line in lines)
    parsed = [json.loads(line) for line in lines]
    assert [p["seq"] for p in parsed] == [1, 2, 3]
    assert parsed[1]["body"]["check"] == "service_account"
    assert parsed[2]["prev_hash"] == parsed[1]["hash"]


def test_concurrent_writers_keep_one_chain(db_url: str) -> None:
    upgrade(db_url)
    stores = [Store(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(store: Store, i: int) -> None:
        barrier.wait()
        try:
            for n in range(10):
                golive.append(store, f"ns/a{i}", golive.HistoryKind.PROMOTION, f"p{i}", f"n{n}", {"n": n})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = golive.verify(stores[0])
    assert result.ok and result.entries == 40


def test_migration_0004_downgrades_and_upgrades(db_url: str) -> None:
    from alembic import command

    from runward.core.store.migrate import _config

    store = _store(db_url)
    _fill(store)
    command.downgrade(_config(db_url), "0002")
    assert not {"golive_history", "waivers"} & set(sa.inspect(store.engine).get_table_names())
    upgrade(db_url)
    assert golive.verify(Store(db_url)).entries == 0
