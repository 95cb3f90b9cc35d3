"""The store: duplicates stored once, acknowledgements recorded, migrations numbered."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.core.batch import Batch, Quarantined
from gateway.core.errors import StoreError, TicketConflict, TicketNotFound
from gateway.core.model import Level, Reading
from gateway.ingest.commit import Ingestor
from gateway.storage.migrations import MIGRATIONS
from gateway.tickets.model import TicketKind
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet

T0 = 1_780_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> StationStore:
    s = StationStore(tmp_path / "s.db")
    s.register_devices(["rg-01", "wl-01"])
    return s


def test_duplicates_are_stored_once(store: StationStore) -> None:
    ing = Ingestor(store, RuleSet([]))
    batch = [Reading("rg-01", "rain_mm", T0 + i, float(i)) for i in range(5)]
    first = ing.commit(Batch(readings=batch), now=T0)
    # a redelivery overlapping the first, with a changed value for a known key
    again = [Reading("rg-01", "rain_mm", T0 + 4, 99.0), Reading("rg-01", "rain_mm", T0 + 5, 5.0)]
    second = ing.commit(Batch(readings=batch + again), now=T0)
    assert (len(first.new), first.duplicates) == (5, 0)
    assert (len(second.new), second.duplicates) == (1, 6)
    assert store.count_readings() == 6
    rows = store.readings("rg-01", "rain_mm", T0, T0 + 10)
    assert rows == [(T0 + i, float(i), 0) for i in range(6)]  # the first value kept


def test_readings_range_is_half_open(store: StationStore) -> None:
    Ingestor(store, RuleSet([])).commit(
        Batch(readings=[Reading("wl-01", "level_m", T0 + i * 1000, 2.0) for i in range(10)]),
        now=T0,
    )
    assert len(store.readings("wl-01", "level_m", T0 + 2000, T0 + 5000)) == 3
    assert store.readings("wl-01", "nope", T0, T0 + 10_000) == []


def test_batch_is_all_or_nothing(store: StationStore) -> None:
    ing = Ingestor(store, RuleSet([]))
    bad = Batch(
        readings=[Reading("rg-01", "rain_mm", T0, 1.0)],
        quarantined=[Quarantined(T0, "t", "r", None)],  # type: ignore[arg-type]
    )
    with pytest.raises(sqlite3.IntegrityError):
        ing.commit(bad, now=T0)
    assert store.count_readings() == 0


def test_device_state_and_quarantine(store: StationStore) -> None:
    ing = Ingestor(store, RuleSet([]))
    ing.commit(
        Batch(
            statuses={"rg-01": (True, T0)},
            seen={"rg-01": (T0 + 5, 42)},
            quarantined=[Quarantined(T0, "stations/x/y/telemetry", "bad", b"{")],
        ),
        now=T0,
    )
    d = store.device("rg-01")
    assert d is not None and (d.online, d.last_seen, d.last_seq) == (True, T0 + 5, 42)
    assert store.quarantined() == [(1, T0, "stations/x/y/telemetry", "bad", b"{")]


def test_acknowledge_records_who_and_refuses_twice(store: StationStore) -> None:
    with store.transaction():
        tid = store.open_ticket(
            kind=TicketKind.HAZARD,
            level=Level.YELLOW,
            title="t",
            device="rg-01",
            point="p",
            reason="r",
            actor="rule:rain",
            metric="rain_mm",
            rule="rain",
            value=6.0,
            at=T0,
        )
    t = store.acknowledge(tid, "张三", "已电话通知", T0 + 1000)
    assert (t.acknowledged_by, t.acknowledged_at, t.updated_at) == ("张三", T0 + 1000, T0 + 1000)
    events = store.events(tid)
    assert [(e.kind, e.actor, e.note) for e in events] == [
        ("opened", "rule:rain", None),
        ("acknowledged", "张三", "已电话通知"),
    ]
    with pytest.raises(TicketConflict, match="already acknowledged by 张三"):
        store.acknowledge(tid, "李四", None, T0 + 2000)
    with pytest.raises(TicketNotFound):
        store.acknowledge(999, "李四", None, T0)


def test_migrations_are_numbered_and_refuse_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    StationStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this gateway knows"):
        StationStore(path)


def test_reader_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no station database"):
        StationStore(tmp_path / "none.db", writer=False)
