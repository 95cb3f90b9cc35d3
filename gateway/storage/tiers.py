"""Reading a series across its two tiers: raw rows (recent, and late arrivals not yet
merged) and compressed day chunks (older). A point is in exactly one of them: ingest
checks a compacted day's chunk before storing a reading for that day (`ChunkIndex`), and
compaction moves rows into a chunk and deletes them in one transaction.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Iterator

from gateway.storage import chunks

DAY_MS = 86_400_000

Point = chunks.Point


class ChunkIndex:
    """Which (series, UTC day) pairs have a chunk, cached per connection.

    `storage_state.chunk_gen` is bumped by every transaction that writes or deletes chunks,
    so a writer reading it at the start of its transaction sees every compaction, whichever
    connection ran it.
    """

    def __init__(self) -> None:
        self.gen: str | None = None
        self.days: set[tuple[int, int]] = set()

    def refresh(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT value FROM storage_state WHERE key = 'chunk_gen'").fetchone()
        gen = row[0] if row else None
        if gen != self.gen:
            rows = conn.execute("SELECT series_id, day FROM chunks").fetchall()
            self.days = {(int(s), int(d)) for s, d in rows}
            self.gen = gen


def bump_gen(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE storage_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
        "WHERE key = 'chunk_gen'"
    )


def chunk_ts(conn: sqlite3.Connection, series_id: int, day: int) -> set[int]:
    row = conn.execute(
        "SELECT data FROM chunks WHERE series_id = ? AND day = ?", (series_id, day)
    ).fetchone()
    return {p[0] for p in chunks.decode(row[0])} if row else set()


def _chunk_points(
    conn: sqlite3.Connection, series_id: int, start: int, end: int
) -> Iterator[Point]:
    rows = conn.execute(
        "SELECT data FROM chunks WHERE series_id = ? AND day >= ? AND day <= ? "
        "AND last_ts >= ? AND first_ts < ? ORDER BY day",
        (series_id, start // DAY_MS, (end - 1) // DAY_MS, start, end),
    )
    for (data,) in rows.fetchall():
        for p in chunks.decode(data):
            if start <= p[0] < end:
                yield p


def read(conn: sqlite3.Connection, series_id: int, start: int, end: int, limit: int) -> list[Point]:
    """(ts, value, flags) for start <= ts < end from both tiers, oldest first."""
    raw: Iterable[Point] = (
        (int(t), float(v), int(f))
        for t, v, f in conn.execute(
            "SELECT ts, value, flags FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts LIMIT ?",
            (series_id, start, end, limit),
        ).fetchall()
    )
    out: list[Point] = []
    for p in heapq.merge(_chunk_points(conn, series_id, start, end), raw):
        out.append(p)
        if len(out) >= limit:
            break
    return out


def newest_in_chunks(conn: sqlite3.Connection, series_id: int) -> Point | None:
    row = conn.execute(
        "SELECT data FROM chunks WHERE series_id = ? ORDER BY day DESC LIMIT 1", (series_id,)
    ).fetchone()
    return chunks.decode(row[0])[-1] if row else None
