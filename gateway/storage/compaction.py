"""Compaction: raw rows of whole UTC days older than the hot window become one compressed
chunk per series per day; rows that arrived late for a day already compacted are merged
into its chunk, and the rows' good readings into the day's 1-minute rollup chunk
(`rollup_chunks`: combined with what it holds, never recomputed from the raw chunk, which
retention may have dropped). Residual 1-minute rollup rows (migration 9) are folded into
the same chunks. Each (series, day) moves in the caller's transaction: chunks written,
rows deleted, `chunk_gen` bumped, so a reader or a writer sees the point in exactly one
tier.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.storage import chunks, rollups, tiers
from gateway.storage.store import Store

DAY_MS = tiers.DAY_MS


@dataclass(slots=True)
class Compacted:
    days: int = 0  # (series, day) chunks written
    points: int = 0  # points now in those chunks
    moved: int = 0  # raw rows moved into chunks
    bytes: int = 0  # size of those chunks
    seconds: float = 0.0
    minute_days: int = 0  # (series, day) chunks of 1-minute rollups written
    minute_bytes: int = 0
    more: bool = False  # work left beyond this call's budget


def pending(store: Store, now: int, hot_ms: int, limit: int) -> list[tuple[str, int, int]]:
    """("raw" | "1m", series id, day) due: each series' oldest day with raw rows or
    residual 1-minute rollup rows wholly before the hot window, oldest first. One index seek per
    series and kind, instead of scanning the rows."""
    cutoff = (now - hot_ms) // DAY_MS * DAY_MS
    conn = store.conn
    due: list[tuple[str, int, int]] = []
    for (sid,) in conn.execute("SELECT id FROM series").fetchall():
        (ts,) = conn.execute("SELECT MIN(ts) FROM readings WHERE series_id = ?", (sid,)).fetchone()
        if ts is not None and ts < cutoff:
            due.append(("raw", int(sid), int(ts) // DAY_MS))
        (bucket,) = conn.execute(
            "SELECT MIN(bucket) FROM rollups WHERE series_id = ? AND res = 60000", (sid,)
        ).fetchone()
        if bucket is not None and bucket < cutoff:
            due.append(("1m", int(sid), int(bucket) // DAY_MS))
    due.sort(key=lambda d: (d[2], d[1], d[0]))
    return due[:limit]


def compact_minutes(store: Store, series_id: int, day: int) -> tuple[int, int]:
    """Fold one series-day's residual 1-minute rollup rows into its chunk; (buckets,
    chunk bytes)."""
    conn = store.conn
    start, end = day * DAY_MS, (day + 1) * DAY_MS
    rows = rollups.read_rows(conn, series_id, rollups.MINUTE, start, end)
    size = rollups.add_to_day(conn, series_id, day, rows)
    conn.execute(
        "DELETE FROM rollups WHERE series_id = ? AND res = 60000 AND bucket >= ? AND bucket < ?",
        (series_id, start, end),
    )
    return len(rows), size


def compact_day(store: Store, series_id: int, day: int) -> tuple[int, int, int, int]:
    """Move one series-day's rows into its chunk and their good readings' minutes into
    the 1-minute chunk; (points, rows moved, chunk bytes, 1-minute chunk bytes).
    Call inside a transaction."""
    conn = store.conn
    start, end = day * DAY_MS, (day + 1) * DAY_MS
    rows: list[chunks.Point] = conn.execute(
        "SELECT ts, value, flags FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? "
        "ORDER BY ts",
        (series_id, start, end),
    ).fetchall()
    minute_bytes = rollups.add_to_day(conn, series_id, day, rollups.minutes_of_points(rows))
    old = conn.execute(
        "SELECT data FROM chunks WHERE series_id = ? AND day = ?", (series_id, day)
    ).fetchone()
    points = chunks.merge(chunks.decode(old[0]), rows) if old else rows
    data = chunks.encode(points)
    conn.execute(
        "INSERT INTO chunks (series_id, day, first_ts, last_ts, count, data) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, day) DO UPDATE SET "
        "first_ts = excluded.first_ts, last_ts = excluded.last_ts, count = excluded.count, "
        "data = excluded.data",
        (series_id, day, points[0][0], points[-1][0], len(points), data),
    )
    conn.execute(
        "DELETE FROM readings WHERE series_id = ? AND ts >= ? AND ts < ?",
        (series_id, start, end),
    )
    return len(points), len(rows), len(data), minute_bytes


def compact(store: Store, now: int, hot_ms: int, budget: int = 50) -> Compacted:
    """Compact up to `budget` series-days in one transaction (short, so ingest waits
    little on the writer thread); `more` says whether work is left."""
    t = time.perf_counter()
    out = Compacted()
    with store.transaction():
        todo = pending(store, now, hot_ms, budget)
        for kind, sid, day in todo:
            if kind == "1m":
                out.minute_days += 1
                out.minute_bytes += compact_minutes(store, sid, day)[1]
                continue
            points, moved, size, minute_bytes = compact_day(store, sid, day)
            out.minute_days += 1
            out.minute_bytes += minute_bytes
            out.days += 1
            out.points += points
            out.moved += moved
            out.bytes += size
        if out.days:
            tiers.bump_gen(store.conn)
        store.conn.execute(
            "INSERT INTO storage_state (key, value) VALUES ('last_compaction', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(now),),
        )
    out.more = bool(todo)  # each series' oldest due day per step: look again until none
    out.seconds = time.perf_counter() - t
    return out


def compact_all(store: Store, now: int, hot_ms: int, budget: int = 50) -> Compacted:
    """Everything due, in transactions of `budget` series-days (tools, tests, the bench)."""
    total = Compacted()
    while True:
        step = compact(store, now, hot_ms, budget)
        total.days += step.days
        total.points += step.points
        total.moved += step.moved
        total.bytes += step.bytes
        total.seconds += step.seconds
        total.minute_days += step.minute_days
        total.minute_bytes += step.minute_bytes
        if not step.more:
            return total
