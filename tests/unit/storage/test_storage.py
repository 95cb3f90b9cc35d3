"""The embedded store: compaction round trips, late data, rollups, retention, disk guard,
backup, restore and export."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cli.storage import backup, export_rows, restore
from gateway.config.storage import Retention, StorageSection
from gateway.core.batch import Batch
from gateway.core.errors import GatewayError, StoreError
from gateway.core.model import Reading
from gateway.devtools.bench.series import realistic_series
from gateway.ingest.commit import Ingestor
from gateway.storage import rollups
from gateway.storage.compaction import compact_all
from gateway.storage.migrations import MIGRATIONS
from gateway.storage.retention import expire, guard
from gateway.storage.service import health
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet

DAY = 86_400_000
DAY0 = 1_780_012_800_000  # a UTC midnight
HOT = 2 * DAY


def fill(ing: Ingestor, device: str, metric: str, points: list[tuple[int, float, int]]) -> None:
    for i in range(0, len(points), 2000):
        rs = [Reading(device, metric, t, v, f) for t, v, f in points[i : i + 2000]]
        ing.commit(Batch(readings=rs), now=DAY0)


@pytest.fixture
def ing(tmp_path: Path) -> Ingestor:
    return Ingestor(StationStore(tmp_path / "s.db"), RuleSet([]))


def test_compacted_reads_equal_raw_reads_across_the_boundary(ing: Ingestor) -> None:
    store = ing.store
    points = realistic_series("level_m", DAY0, 5 * 1440, seed=2)
    fill(ing, "wl-01", "level_m", points)
    before = store.readings("wl-01", "level_m", DAY0 - DAY, DAY0 + 6 * DAY, 10**6)
    now = DAY0 + 5 * DAY  # days 0-2 are older than the 2-day hot window
    done = compact_all(store, now, HOT)
    assert done.days == 3 and done.moved == done.points == 3 * 1440
    assert store.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 2 * 1440
    after = store.readings("wl-01", "level_m", DAY0 - DAY, DAY0 + 6 * DAY, 10**6)
    assert after == before == points
    # a window straddling the boundary, and one inside a chunk
    cut = DAY0 + 3 * DAY
    assert store.readings("wl-01", "level_m", cut - 3_600_000, cut + 3_600_000) == [
        p for p in points if cut - 3_600_000 <= p[0] < cut + 3_600_000
    ]
    assert store.readings("wl-01", "level_m", DAY0 + 100, DAY0 + 200_000) == [
        p for p in points if DAY0 + 100 <= p[0] < DAY0 + 200_000
    ]
    assert store.readings("wl-01", "level_m", DAY0, DAY0 + 6 * DAY, limit=10) == points[:10]
    assert store.count_readings() == len(points)
    # compacting again finds nothing; the bytes are within the target
    assert compact_all(store, now, HOT).days == 0
    # 1-minute rollups of 1-minute data: one reading a bucket, chunks and rows alike
    sid = store.known_series_id("wl-01", "level_m")
    assert sid is not None
    minutes = rollups.read(store.conn, sid, 60_000, DAY0, DAY0 + 5 * DAY)
    assert [(b.ts, b.count, b.min) for b in minutes] == [
        (t - t % 60_000, 1, v) for t, v, _ in points
    ]
    assert store.conn.execute("SELECT COUNT(*) FROM rollup_chunks").fetchone()[0] == 3
    (size,) = store.conn.execute("SELECT SUM(length(data)) FROM chunks").fetchone()
    assert size / (3 * 1440) <= 3.0


def test_late_data_is_merged_and_duplicates_of_compacted_points_stored_once(
    ing: Ingestor,
) -> None:
    store = ing.store
    points = realistic_series("rain_mm", DAY0, 1440, seed=3)
    fill(ing, "rg-01", "rain_mm", points[::2])  # every other minute first
    compact_all(store, DAY0 + 5 * DAY, HOT)
    late = [Reading("rg-01", "rain_mm", t, v, f) for t, v, f in points]  # all, again
    out = ing.commit(Batch(readings=late), now=DAY0 + 5 * DAY)
    assert len(out.new) == len(points) // 2 and out.duplicates == len(points) - len(points) // 2
    # merged on the next compaction: one chunk for the day, every point once
    assert compact_all(store, DAY0 + 5 * DAY, HOT).points == len(points)
    assert store.readings("rg-01", "rain_mm", DAY0, DAY0 + DAY, 10**6) == points
    assert store.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 1
    # a redelivery of the whole day adds nothing and counts nothing in the rollups
    again = ing.commit(Batch(readings=late), now=DAY0 + 5 * DAY)
    assert again.new == []
    sid = store.known_series_id("rg-01", "rain_mm")
    assert sid is not None
    for res in rollups.RESOLUTIONS.values():
        got = rollups.read(store.conn, sid, res, DAY0, DAY0 + DAY)
        assert sum(b.count for b in got) == len(points), res


def test_latest_finds_a_series_whose_readings_are_all_compacted(ing: Ingestor) -> None:
    points = realistic_series("crack_mm", DAY0, 100, seed=4)
    fill(ing, "cm-01", "crack_mm", points)
    compact_all(ing.store, DAY0 + 10 * DAY, HOT)
    assert ing.store.latest()[("cm-01", "crack_mm")] == points[-1]


def raw_aggregates(
    readings: list[Reading], res: int
) -> dict[tuple[str, int], tuple[int, float, float, float]]:
    first: dict[tuple[str, int], list[float]] = {}
    seen: set[tuple[str, int]] = set()
    for r in readings:  # the first of duplicates is the one stored
        if (r.metric, r.ts) in seen:
            continue
        seen.add((r.metric, r.ts))
        if r.flags == 0:
            first.setdefault((r.metric, r.ts - r.ts % res), []).append(r.value)
    return {k: (len(v), math.fsum(v), min(v), max(v)) for k, v in first.items()}


reading = st.builds(
    Reading,
    st.just("d"),
    st.sampled_from(["a", "b"]),
    st.integers(DAY0, DAY0 + 3 * DAY),
    st.integers(-5000, 5000).map(lambda k: k / 100),
    st.sampled_from([0, 0, 0, 1]),
)


def check_rollups(store: StationStore, every: list[Reading]) -> None:
    for name, res in rollups.RESOLUTIONS.items():
        want = raw_aggregates(every, res)
        got = {}
        for metric in ("a", "b"):
            sid = store.known_series_id("d", metric)
            if sid is None:
                continue
            for bk in rollups.read(store.conn, sid, res, DAY0 - DAY, DAY0 + 5 * DAY):
                got[(metric, bk.ts)] = (bk.count, bk.sum, bk.min, bk.max)
        assert got.keys() == want.keys(), name
        for k, (n, s, lo, hi) in want.items():
            assert got[k][0] == n and got[k][2:] == (lo, hi), (name, k)
            assert math.isclose(got[k][1], s, rel_tol=1e-9, abs_tol=1e-9)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(reading, max_size=60), max_size=6), compact_after=st.integers(0, 6)
)
def test_rollups_equal_aggregates_of_the_raw_readings(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[Reading]],
    compact_after: int,
) -> None:
    ing = Ingestor(StationStore(tmp_path_factory.mktemp("r") / "s.db"), RuleSet([]))
    try:
        for i, b in enumerate(batches):  # late and duplicate readings across batches
            if i == compact_after:
                compact_all(ing.store, DAY0 + 6 * DAY, HOT)
            ing.commit(Batch(readings=b), now=DAY0)
        every = [r for b in batches for r in b]
        check_rollups(ing.store, every)
        compact_all(ing.store, DAY0 + 6 * DAY, HOT)  # late rows merged into the chunks
        check_rollups(ing.store, every)
    finally:
        ing.store.close()


@pytest.mark.parametrize(
    ("points", "want"),
    [
        ([], []),
        ([(60_000, 2.0, 0)], [(60_000, 1, 2.0, 2.0, 2.0)]),
        # one minute, three readings: the middle one is the maximum, the last the minimum
        (
            [(120_000, 2.0, 0), (150_000, 5.0, 0), (179_999, -1.0, 0)],
            [(120_000, 3, 6.0, -1.0, 5.0)],
        ),
        # a flagged reading counts nowhere, even as a minute's only reading
        ([(60_000, 9.0, 4), (61_000, 1.0, 0), (120_000, 7.0, 1)], [(60_000, 1, 1.0, 1.0, 1.0)]),
        ([(59_999, 1.0, 0), (60_000, 3.0, 0)], [(0, 1, 1.0, 1.0, 1.0), (60_000, 1, 3.0, 3.0, 3.0)]),
    ],
)
def test_minutes_of_points_equals_the_grouping_query(
    points: list[tuple[int, float, int]], want: list[tuple[int, int, float, float, float]]
) -> None:
    got = [(b.ts, b.count, b.sum, b.min, b.max) for b in rollups.minutes_of_points(points)]
    assert got == want
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE readings (series_id, ts, value, flags)")
    conn.executemany("INSERT INTO readings VALUES (1, ?, ?, ?)", points)
    assert rollups.minutes_of_rows(conn, 1, 0, 10**9) == rollups.minutes_of_points(points)


def legacy_rollups(store: StationStore, new: list[Reading]) -> None:
    """What commits kept before migration 9: 1-minute, hourly and daily rows."""
    pts = [(store.series_id(r.device, r.metric), r.ts, r.value, r.flags) for r in new]
    for res in rollups.RESOLUTIONS.values():
        rollups.record(store.conn, rollups.aggregate(pts, res))


def test_migration_turns_legacy_rollups_into_hours_minute_chunks_and_residuals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database of the 1m/1h/1d rows: a compacted day with late rows since, a day whose
    raw rows were compacted but whose 1-minute rows were not yet, and a hot day."""
    from gateway.storage import compaction, migrations, tiers

    db = tmp_path / "s.db"
    first = [
        Reading("d", m, DAY0 + i * 419_000 + j, (i % 13) / 4, 0 if i % 5 else 1)
        for i in range(4 * 206)
        for j, m in enumerate(("a", "b"))
    ]
    late = [
        Reading("d", m, DAY0 + i * 419_000 + 7_000 + j, (i % 11) / 2, 0)
        for i in range(0, 2 * 206, 3)
        for j, m in enumerate(("a", "b"))
    ] + first[:40]  # duplicates too
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:8])
    store = StationStore(db)
    with store.transaction():
        legacy_rollups(store, store.insert_readings(first))
    with store.transaction():  # what compaction did then: days 0 and 1, both kinds
        for metric in ("a", "b"):
            sid = store.series_id("d", metric)
            for day in (DAY0 // DAY, DAY0 // DAY + 1):
                compaction.compact_day(store, sid, day)
                store.conn.execute(
                    "DELETE FROM rollups WHERE series_id = ? AND res = 60000 "
                    "AND bucket >= ? AND bucket < ?",
                    (sid, day * DAY, (day + 1) * DAY),
                )
        b = store.series_id("d", "b")  # b's day 1: raw compacted, its minutes still rows
        store.conn.execute("DELETE FROM rollup_chunks WHERE series_id = ? AND day = ?",
                           (b, DAY0 // DAY + 1))  # fmt: skip
        day1 = [(b, r.ts, r.value, r.flags) for r in first
                if r.metric == "b" and DAY0 + DAY <= r.ts < DAY0 + 2 * DAY]  # fmt: skip
        rollups.record(store.conn, rollups.aggregate(day1, 60_000))
        tiers.bump_gen(store.conn)
    with store.transaction():
        legacy_rollups(store, store.insert_readings(late))
    store.close()
    monkeypatch.undo()
    store = StationStore(db)  # migration 9
    try:
        every = first + late
        check_rollups(store, every)
        compact_all(store, DAY0 + 6 * DAY, HOT)
        check_rollups(store, every)
        n = store.conn.execute("SELECT COUNT(*) FROM rollups WHERE res != 3600000").fetchone()
        assert n[0] == 0  # residual minutes folded; no hour was dropped
    finally:
        store.close()


def test_resolution_is_the_finest_that_fits() -> None:
    assert rollups.choose(7 * DAY, 1000, 900) == "raw"
    assert rollups.choose(DAY / 2, 1000, 5000) == "1m"
    assert rollups.choose(7 * DAY, 1000, 10080) == "1h"
    assert rollups.choose(400 * DAY, 1000, 10**6) == "1d"


def storage(**kw: object) -> StorageSection:
    return StorageSection.model_validate(kw)


def test_retention_drops_each_tier_past_its_span(ing: Ingestor) -> None:
    store = ing.store
    fill(ing, "wl-01", "level_m", realistic_series("level_m", DAY0, 6 * 1440, seed=5))
    compact_all(store, DAY0 + 6 * DAY, HOT)
    cfg = storage(retention=Retention(raw="3d", rollup_1m="4d", rollup_1h="5d"))
    now = DAY0 + 7 * DAY
    dropped = expire(store, now, cfg)
    # raw keeps days 4-5 (a chunk goes when its last point is past 3 days)
    assert dropped.chunk_days == 4 and dropped.raw_rows == 0
    left = store.readings("wl-01", "level_m", 0, 2**62, 10**6)
    assert left[0][0] >= DAY0 + 4 * DAY - 2000
    assert dropped.rollups == {"1m_days": 3, "1h": 2 * 24}
    sid = store.known_series_id("wl-01", "level_m")
    assert sid is not None
    minutes = rollups.read(store.conn, sid, 60_000, 0, 2**62)
    assert minutes[0].ts == DAY0 + 3 * DAY and len(minutes) == 3 * 1440
    days = rollups.read(store.conn, sid, DAY, 0, 2**62)  # dropped hours live on in their days
    assert len(days) == 6 and sum(b.count for b in days) == 6 * 1440
    tickets = store.conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    assert tickets == 0  # (retention never touches the ledger: nothing else is deleted)


def test_disk_guard_drops_oldest_raw_then_1m_never_newer_than_its_floor(ing: Ingestor) -> None:
    store = ing.store
    fill(ing, "wl-01", "level_m", realistic_series("level_m", DAY0, 10 * 1440, seed=6))
    compact_all(store, DAY0 + 10 * DAY, HOT)
    cfg = storage(min_free_mb=100, guard_keep_raw="7d")
    now = DAY0 + 10 * DAY
    assert guard(store, now, cfg, lambda _: 200 * 2**20).state == "ok"
    # never enough space: it drops all it may, and says so
    report = guard(store, now, cfg, lambda _: 1)
    assert report.state == "critical"
    assert report.dropped.chunk_days == 3 and report.dropped.rollups == {"1m_days": 3}
    first = store.readings("wl-01", "level_m", 0, 2**62, 1)[0][0]
    assert first >= DAY0 + 3 * DAY - 2000
    assert (
        store.conn.execute("SELECT COUNT(*) FROM rollups WHERE res = 3600000").fetchone()[0] == 240
    )
    # space comes back after the first day: it stops there
    fill(ing, "wl-02", "level_m", realistic_series("level_m", DAY0 - 5 * DAY, 2 * 1440, seed=7))
    calls = iter([1, 1, 10**12])
    report = guard(store, now, cfg, lambda _: next(calls))
    assert report.state == "freed" and report.dropped.raw_rows == 1440
    # the dropped rows' minutes outlive them (1-minute rollups keep their own span)
    wl2 = store.known_series_id("wl-02", "level_m")
    assert wl2 is not None
    minutes = rollups.read(store.conn, wl2, 60_000, 0, 2**62)
    assert len(minutes) == 2 * 1440 and all(b.count == 1 for b in minutes)
    state = health(store, cfg, lambda _: 5)
    assert state["guard"]["state"] == "freed" and state["guard_state"] == "low"
    assert state["chunks"]["points"] == store.count_readings() - state["raw"]["rows"]


def test_backup_restore_and_the_running_writer_guard(ing: Ingestor, tmp_path: Path) -> None:
    fill(ing, "rg-01", "rain_mm", realistic_series("rain_mm", DAY0, 3000, seed=8))
    compact_all(ing.store, DAY0 + 5 * DAY, HOT)
    out = tmp_path / "b.db"
    backup(ing.store.path, out)
    target = tmp_path / "restored" / "s.db"
    restore(out, target)
    copy = StationStore(target)
    try:
        assert copy.count_readings() == 3000
        assert copy.readings("rg-01", "rain_mm", 0, 2**62, 10**6) == ing.store.readings(
            "rg-01", "rain_mm", 0, 2**62, 10**6
        )
        # a writer holds the database: restore refuses, and leaves it alone
        with pytest.raises(GatewayError, match="has this database open"):
            restore(out, target)
    finally:
        copy.close()
    restore(out, target)  # closed: now it may
    # the other way round: a writer cannot open while a restore holds it
    import fcntl
    import os

    fd = os.open(target, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StoreError, match="restore"):
            StationStore(target)
    finally:
        os.close(fd)


def test_restore_refuses_what_is_not_a_station_database(tmp_path: Path) -> None:
    bad = tmp_path / "x.db"
    sqlite3.connect(bad).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(GatewayError, match="not a station database"):
        restore(bad, tmp_path / "s.db")
    (tmp_path / "junk.db").write_bytes(b"x" * 5000)
    with pytest.raises(GatewayError, match="not a readable SQLite"):
        restore(tmp_path / "junk.db", tmp_path / "s.db")


def test_export_reads_both_tiers_with_local_time(ing: Ingestor) -> None:
    from zoneinfo import ZoneInfo

    points = realistic_series("crack_mm", DAY0, 4 * 1440, seed=9)
    fill(ing, "cm-01", "crack_mm", points)
    compact_all(ing.store, DAY0 + 4 * DAY, HOT)  # days 0-1 chunks, 2-3 rows
    start, end = DAY0 + DAY + 3_600_000, DAY0 + 3 * DAY
    text = io.StringIO()
    csv.writer(text).writerows(
        export_rows(ing.store, "cm-01", "crack_mm", start, end, ZoneInfo("Asia/Shanghai"))
    )
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert rows[0] == [
        "ts_ms", "time_utc", "time_local (Asia/Shanghai)", "device", "metric", "value", "flags"
    ]  # fmt: skip
    want = [p for p in points if start <= p[0] < end]
    assert [(int(r[0]), float(r[5]), int(r[6])) for r in rows[1:]] == want
    first = rows[1]
    assert first[1].endswith("Z") and first[2].endswith("+08:00")
    assert first[1][11:13] == "01" and first[2][11:13] == "09"


def test_rule_replay_history_reads_compacted_days(ing: Ingestor) -> None:
    from gateway.cli.rules import db_history

    a = realistic_series("rain_mm", DAY0, 4 * 1440, seed=12)
    b = realistic_series("level_m", DAY0, 4 * 1440, seed=13)
    fill(ing, "rg-01", "rain_mm", a)
    fill(ing, "wl-01", "level_m", b)
    compact_all(ing.store, DAY0 + 4 * DAY, HOT)
    got = list(db_history(ing.store.path, DAY0, DAY0 + 4 * DAY))
    assert len(got) == len(a) + len(b)
    assert [r.ts for r in got] == sorted(r.ts for r in got)
    assert [(r.ts, r.value) for r in got if r.metric == "rain_mm"] == [(t, v) for t, v, _ in a]


def test_a_writer_that_fails_to_open_holds_no_lock(ing: Ingestor, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    backup(ing.store.path, out)
    target = tmp_path / "newer.db"
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StoreError, match="newer than this gateway"):
        StationStore(target)
    assert restore(out, target) == len(MIGRATIONS)  # not refused: the failed writer let go
