"""The dedup window folds identical events of one container and counts what it folded."""

from __future__ import annotations

from sensor.dedup import Deduper


def test_identical_events_inside_the_window_are_folded_and_counted() -> None:
    d = Deduper(window_s=1.0)
    assert d.admit(1, "file_open", ("/etc/hosts", 0), now=10.0)
    assert not d.admit(1, "file_open", ("/etc/hosts", 0), now=10.5)
    assert not d.admit(1, "file_open", ("/etc/hosts", 0), now=10.99)
    assert d.admit(1, "file_open", ("/etc/hosts", 0), now=11.0)  # window measured from the last sent
    assert d.folded == {"file_open": 2}


def test_container_kind_and_key_each_separate_events() -> None:
    d = Deduper(window_s=1.0)
    assert d.admit(1, "file_open", ("/a", 0), 0.0)
    assert d.admit(2, "file_open", ("/a", 0), 0.1)  # other container
    assert d.admit(1, "file_open", ("/a", 1), 0.2)  # other flags
    assert d.admit(1, "dns", ("/a", 0), 0.3)  # other kind
    assert sum(d.folded.values()) == 0


def test_zero_window_disables_folding() -> None:
    d = Deduper(window_s=0)
    assert all(d.admit(1, "exec", "x", 0.0) for _ in range(5))
    assert len(d) == 0


def test_memory_is_bounded_by_expiry_and_max_keys() -> None:
    d = Deduper(window_s=1.0, max_keys=100)
    for i in range(1000):
        d.admit(1, "file_open", i, now=i * 0.001)
    assert len(d) <= 100
    d.admit(1, "file_open", "late", now=50.0)
    assert len(d) == 1  # everything older than the window expired
