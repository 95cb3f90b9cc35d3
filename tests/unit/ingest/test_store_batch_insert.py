"""Batched inserts keep the store's promise: each key once, the first value kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.core.model import Reading
from gateway.tickets.store import StationStore

T0 = 1_780_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> StationStore:
    return StationStore(tmp_path / "s.db")


def test_all_new_batch_returns_every_reading(store: StationStore) -> None:
    batch = [Reading("a", m, T0 + i, float(i)) for i in range(100) for m in ("x", "y")]
    with store.transaction():
        assert store.insert_readings(batch) == batch
    assert store.count_readings() == 200


def test_duplicates_inside_one_batch_and_against_the_store(store: StationStore) -> None:
    with store.transaction():
        store.insert_readings([Reading("a", "x", T0, 1.0)])
    batch = [
        Reading("a", "x", T0, 9.0),  # already stored
        Reading("a", "x", T0 + 1, 2.0),
        Reading("a", "x", T0 + 1, 8.0),  # twice in this batch: the first one counts
        Reading("b", "x", T0, 3.0),  # a new series in the same batch
    ]
    with store.transaction():
        new = store.insert_readings(iter(batch))
    assert new == [batch[1], batch[3]]
    assert store.readings("a", "x", T0, T0 + 10) == [(T0, 1.0, 0), (T0 + 1, 2.0, 0)]
    assert store.readings("b", "x", T0, T0 + 10) == [(T0, 3.0, 0)]


def test_a_rolled_back_batch_forgets_the_series_it_created(store: StationStore) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.insert_readings([Reading("new", "x", T0, 1.0)])
        store.conn.execute("INSERT INTO quarantine (received_at) VALUES (1)")  # fails
    with store.transaction():
        assert store.insert_readings([Reading("new", "x", T0, 1.0)]) == [
            Reading("new", "x", T0, 1.0)
        ]
    assert store.readings("new", "x", T0, T0 + 1) == [(T0, 1.0, 0)]
