"""Retention per resolution and the disk guard.

Retention: raw readings (rows and whole-day chunks) and each rollup resolution are kept
for their configured span (`[storage.retention]`); "forever" keeps them. Raw rows leave
only after their 1-minute buckets have joined the day's 1-minute chunk (compaction has
done that for chunks already), and hours only after joining their day's row, so each
resolution keeps its own span whatever the finer ones keep.

The disk guard, when the free space of the database's folder is below `min_free_mb`, in
this order and only as far as needed, re-measuring after each step:
  1. everything past its retention (as above, at once);
  2. the oldest day of raw readings (chunks and rows, all series), day by day, but never
     readings newer than `guard_keep_raw`;
  3. the oldest day of 1-minute rollups, day by day, with the same floor.
Hourly and daily rollups, tickets, their events (the ledger), calls, deliveries,
handovers and patrol records are never dropped. If it is still low after that, the state
is `critical` and stays so (an operator must free space). Freed pages go back to the
filesystem through `PRAGMA incremental_vacuum` (databases created by this version have
`auto_vacuum = INCREMENTAL`; an older file reuses the freed pages instead of growing).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.config.storage import StorageSection, ms
from gateway.storage import rollups, tiers
from gateway.storage.store import Store
from rules.durations import parse_duration

log = logging.getLogger("stationgw.storage")

DAY_MS = tiers.DAY_MS
MIB = 1024 * 1024

FreeBytes = Callable[[Path], int]


def disk_free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


@dataclass(slots=True)
class Dropped:
    raw_rows: int = 0
    chunk_days: int = 0
    chunk_points: int = 0
    rollups: dict[str, int] = field(default_factory=dict)

    def add(self, other: Dropped) -> None:
        self.raw_rows += other.raw_rows
        self.chunk_days += other.chunk_days
        self.chunk_points += other.chunk_points
        for k, v in other.rollups.items():
            self.rollups[k] = self.rollups.get(k, 0) + v


def _drop_raw_before(store: Store, cutoff: int, *, whole_days: bool) -> Dropped:
    """Rows older than cutoff; chunks whose last point is older (or, with whole_days,
    whose day starts before cutoff)."""
    conn = store.conn
    out = Dropped()
    rollups.fold_raw_before(conn, cutoff)
    out.raw_rows = conn.execute("DELETE FROM readings WHERE ts < ?", (cutoff,)).rowcount
    where = "day < ?" if whole_days else "last_ts < ?"
    arg = cutoff // DAY_MS if whole_days else cutoff
    row = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(count), 0) FROM chunks WHERE {where}", (arg,)
    ).fetchone()
    if row[0]:
        conn.execute(f"DELETE FROM chunks WHERE {where}", (arg,))
        tiers.bump_gen(conn)
    out.chunk_days, out.chunk_points = int(row[0]), int(row[1])
    return out


def expire(store: Store, now: int, cfg: StorageSection) -> Dropped:
    """Delete what is past its retention (one transaction)."""
    out = Dropped()
    with store.transaction():
        raw = ms(cfg.retention.raw)
        if raw is not None:
            out.add(_drop_raw_before(store, now - raw, whole_days=False))
        spans = {
            "1m": cfg.retention.rollup_1m,
            "1h": cfg.retention.rollup_1h,
            "1d": cfg.retention.rollup_1d,
        }
        for name, span in spans.items():
            keep = ms(span)
            if keep is not None:
                if name == "1h":
                    _fold_hours_before(store, now - keep)
                n = store.conn.execute(
                    "DELETE FROM rollups WHERE res = ? AND bucket < ?",
                    (rollups.RESOLUTIONS[name], now - keep),
                ).rowcount
                if n:
                    out.rollups[name] = n
                if name == "1m":
                    out.add(_drop_minute_days(store, (now - keep) // DAY_MS))
    return out


def _fold_hours_before(store: Store, cutoff: int) -> None:
    """Hours about to go join their day's row (a day is its hours plus that row)."""
    store.conn.execute(
        "INSERT INTO rollups (series_id, res, bucket, count, sum, min, max) "
        "SELECT series_id, 86400000, bucket - bucket % 86400000, SUM(count), SUM(sum), "
        "MIN(min), MAX(max) FROM rollups WHERE res = 3600000 AND bucket < ? "
        "GROUP BY series_id, bucket - bucket % 86400000 "
        "ON CONFLICT (series_id, res, bucket) DO UPDATE SET "
        "count = count + excluded.count, sum = sum + excluded.sum, "
        "min = min(min, excluded.min), max = max(max, excluded.max)",
        (cutoff,),
    )


def _drop_minute_days(store: Store, before_day: int) -> Dropped:
    """1-minute rollup chunks of days before `before_day`."""
    n = store.conn.execute("DELETE FROM rollup_chunks WHERE day < ?", (before_day,)).rowcount
    return Dropped(rollups={"1m_days": n} if n else {})


def reclaim(store: Store) -> None:
    """Give freed pages back to the filesystem (outside a transaction)."""
    # executescript steps the pragma to the end; execute() would free a single page
    store.conn.executescript("PRAGMA incremental_vacuum;")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _oldest_raw_day(store: Store) -> int | None:
    row = store.conn.execute(
        "SELECT MIN(d) FROM (SELECT MIN(day) AS d FROM chunks "
        "UNION ALL SELECT MIN(ts) / 86400000 FROM readings)"
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _oldest_1m_day(store: Store) -> int | None:
    row = store.conn.execute(
        "SELECT MIN(d) FROM (SELECT MIN(day) AS d FROM rollup_chunks "
        "UNION ALL SELECT MIN(bucket) / 86400000 FROM rollups WHERE res = 60000)"
    ).fetchone()
    return None if row[0] is None else int(row[0])


@dataclass(slots=True)
class GuardReport:
    state: str  # ok, freed (was low, now above the floor), critical (still low)
    free_bytes: int
    floor_bytes: int
    at: int
    dropped: Dropped = field(default_factory=Dropped)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def guard(
    store: Store, now: int, cfg: StorageSection, free_bytes: FreeBytes = disk_free
) -> GuardReport:
    """Run the disk guard once (see the module's docstring); record its report."""
    folder = store.path.parent
    floor = int(cfg.min_free_mb * MIB)
    free = free_bytes(folder)
    report = GuardReport("ok", free, floor, now)
    if free < floor:
        log.warning("disk guard: %d MiB free < %d MiB floor: dropping", free // MIB, floor // MIB)
        report.dropped.add(expire(store, now, cfg))
        reclaim(store)
        free = free_bytes(folder)
        keep_from = now - parse_duration(cfg.guard_keep_raw)
        for oldest in (_oldest_raw_day, _oldest_1m_day):
            while free < floor:
                day = oldest(store)
                if day is None or (day + 1) * DAY_MS > keep_from:
                    break
                with store.transaction():
                    if oldest is _oldest_raw_day:
                        report.dropped.add(
                            _drop_raw_before(store, (day + 1) * DAY_MS, whole_days=True)
                        )
                    else:
                        n = store.conn.execute(
                            "DELETE FROM rollups WHERE res = 60000 AND bucket < ?",
                            ((day + 1) * DAY_MS,),
                        ).rowcount
                        report.dropped.add(Dropped(rollups={"1m": n} if n else {}))
                        report.dropped.add(_drop_minute_days(store, day + 1))
                reclaim(store)
                free = free_bytes(folder)
        report.free_bytes = free
        report.state = "freed" if free >= floor else "critical"
        if report.state == "critical":
            log.error(
                "disk guard: still %d MiB free < %d MiB floor after dropping all it may",
                free // MIB,
                floor // MIB,
            )
    with store.transaction():
        store.conn.execute(
            "INSERT INTO storage_state (key, value) VALUES ('guard', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (json.dumps(report.to_json()),),
        )
    return report
