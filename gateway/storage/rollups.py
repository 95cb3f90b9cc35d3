"""Rollups: per series and bucket (1 min, 1 h, 1 UTC day) count, sum, min, max.

Only the hourly buckets are kept incrementally: the readings a batch stored as new
(duplicates are not new) are aggregated in memory (`aggregate`, pure) and added to the
stored hour rows in the same transaction (`record`), so a late reading lands in its old
hour and a redelivery counts once. One upsert per (series, hour) of a batch: storing the
1-minute and 1-day buckets too cost three per reading of a 1-minute series, cutting the
commit rate to a quarter (BENCHMARKS.md). The other resolutions come from what is stored:
- 1 minute: the raw rows' good readings (the hot window and late rows not yet compacted)
  combined with the day's 1-minute chunk (`rollup_chunks`), which compaction extends with
  the rows it moves into a raw chunk (and retention or the disk guard with the rows they
  drop), in the same transaction: a good reading counts in exactly one of the two, and the
  minutes outlive the raw readings (their own retention). 1-minute rows in `rollups` are
  residuals of databases from before this split (migration 9), folded into the chunks by
  compaction like the raw rows.
- 1 day: the day's hour rows grouped, plus a day row holding the hours that retention has
  dropped (hours are kept forever by default).
Only good readings (flags == 0) are rolled up: a value the fault screen flagged (out of
the sensor's range, stuck, impossible jump) would distort a chart's min, max and mean; raw
points keep them, with their flags. Buckets are UTC: a day is a UTC day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.storage import chunks

RESOLUTIONS: dict[str, int] = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000

Key = tuple[int, int, int]  # (series id, res ms, bucket start ms)
Agg = list[float]  # [count, sum, min, max]

_UPSERT = (
    "INSERT INTO rollups (series_id, res, bucket, count, sum, min, max) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, res, bucket) DO UPDATE SET "
    "count = count + excluded.count, sum = sum + excluded.sum, "
    "min = min(min, excluded.min), max = max(max, excluded.max)"
)


@dataclass(slots=True)  # not frozen: that costs 1.1 µs more per bucket, 1,440 a series-day
class Bucket:
    ts: int
    count: int
    sum: float
    min: float
    max: float

    def to_json(self) -> dict[str, object]:
        return {
            "ts": self.ts,
            "value": self.sum / self.count,
            "min": self.min,
            "max": self.max,
            "sum": self.sum,
            "count": self.count,
        }


def aggregate(points: Iterable[tuple[int, int, float, int]], res: int = HOUR) -> dict[Key, Agg]:
    """(series id, ts, value, flags) -> the buckets' increments at one resolution."""
    out: dict[Key, Agg] = {}
    for sid, ts, value, flags in points:
        if flags:
            continue
        key = (sid, res, ts - ts % res)
        agg = out.get(key)
        if agg is None:
            out[key] = [1, value, value, value]
        else:
            agg[0] += 1
            agg[1] += value
            if value < agg[2]:
                agg[2] = value
            if value > agg[3]:
                agg[3] = value
    return out


def record(conn: sqlite3.Connection, increments: dict[Key, Agg]) -> None:
    """Add increments to the stored bucket rows (inside the caller's transaction)."""
    conn.executemany(
        _UPSERT, [(s, r, b, int(a[0]), a[1], a[2], a[3]) for (s, r, b), a in increments.items()]
    )


def combine(a: Bucket, b: Bucket) -> Bucket:
    return Bucket(a.ts, a.count + b.count, a.sum + b.sum, min(a.min, b.min), max(a.max, b.max))


def encode_day(buckets: list[Bucket]) -> bytes:
    """A day's 1-minute buckets (sorted) as one compressed chunk."""
    return chunks.encode_table(
        [b.ts for b in buckets],
        [[b.count for b in buckets], [b.sum for b in buckets],
         [b.min for b in buckets], [b.max for b in buckets]],
    )  # fmt: skip


def decode_day(blob: bytes) -> list[Bucket]:
    ts, (count, total, lo, hi) = chunks.decode_table(blob)
    return [
        Bucket(t, int(c), s, a, b) for t, c, s, a, b in zip(ts, count, total, lo, hi, strict=True)
    ]


def merge(old: list[Bucket], new: list[Bucket]) -> list[Bucket]:
    """Buckets of two sources for the same series: the same bucket's parts combined."""
    if not old or not new:  # the usual case: one source holds the whole range
        return old or new
    out = {b.ts: b for b in old}
    for b in new:
        o = out.get(b.ts)
        out[b.ts] = combine(o, b) if o else b
    return [out[t] for t in sorted(out)]


def add_to_day(conn: sqlite3.Connection, series_id: int, day: int, buckets: list[Bucket]) -> int:
    """Combine 1-minute buckets of one series-day into its chunk (in the caller's
    transaction); the chunk's size in bytes (0: nothing to add)."""
    if not buckets:
        return 0
    old = conn.execute(
        "SELECT data FROM rollup_chunks WHERE series_id = ? AND day = ?", (series_id, day)
    ).fetchone()
    data = encode_day(merge(decode_day(old[0]), buckets) if old else buckets)
    conn.execute(
        "INSERT INTO rollup_chunks (series_id, day, data) VALUES (?, ?, ?) "
        "ON CONFLICT (series_id, day) DO UPDATE SET data = excluded.data",
        (series_id, day, data),
    )
    return len(data)


def fold_raw_before(conn: sqlite3.Connection, cutoff: int) -> None:
    """Before raw rows older than `cutoff` are deleted (retention, disk guard): their good
    readings' 1-minute buckets join the day chunks, so the minutes outlive them."""
    todo = conn.execute(
        "SELECT DISTINCT series_id, ts / 86400000 FROM readings WHERE ts < ? AND flags = 0",
        (cutoff,),
    ).fetchall()
    for sid, day in todo:
        start = int(day) * DAY
        buckets = minutes_of_rows(conn, int(sid), start, min(start + DAY, cutoff))
        add_to_day(conn, int(sid), int(day), buckets)


def read_rows(
    conn: sqlite3.Connection, series_id: int, res: int, first: int, end: int
) -> list[Bucket]:
    """Bucket rows starting in [first, end)."""
    rows = conn.execute(
        "SELECT bucket, count, sum, min, max FROM rollups WHERE series_id = ? AND res = ? "
        "AND bucket >= ? AND bucket < ? ORDER BY bucket",
        (series_id, res, first, end),
    ).fetchall()
    return _bucket_rows(rows)


def _bucket_rows(rows: list[tuple[int, int, float, float, float]]) -> list[Bucket]:
    return [Bucket(int(b), int(c), float(s), float(lo), float(hi)) for b, c, s, lo, hi in rows]


def minutes_of_rows(conn: sqlite3.Connection, series_id: int, lo: int, hi: int) -> list[Bucket]:
    """1-minute buckets of the good readings in raw rows with lo <= ts < hi."""
    rows = conn.execute(
        "SELECT ts - ts % 60000 AS b, COUNT(*), SUM(value), MIN(value), MAX(value) "
        "FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? AND flags = 0 "
        "GROUP BY b ORDER BY b",
        (series_id, lo, hi),
    ).fetchall()
    return _bucket_rows(rows)


def minutes_of_points(points: Iterable[tuple[int, float, int]]) -> list[Bucket]:
    """1-minute buckets of the good readings among (ts, value, flags) sorted by ts: what
    `minutes_of_rows` gives for the same rows, for a caller that holds them already
    (compaction: one read of a series-day instead of a second, grouping query)."""
    out: list[Bucket] = []
    b: Bucket | None = None
    for ts, value, flags in points:
        if flags:
            continue
        start = ts - ts % MINUTE
        if b is not None and b.ts == start:
            b.count += 1
            b.sum += value
            if value < b.min:
                b.min = value
            elif value > b.max:
                b.max = value
        else:
            b = Bucket(start, 1, value, value, value)
            out.append(b)
    return out


def raw_minutes(conn: sqlite3.Connection, series_id: int, first: int, end: int) -> list[Bucket]:
    """The same, whole buckets starting in [first, end)."""
    return minutes_of_rows(conn, series_id, first + (-first) % MINUTE, end + (-end) % MINUTE)


def minute_chunks(conn: sqlite3.Connection, series_id: int, first: int, end: int) -> list[Bucket]:
    """1-minute buckets from the day chunks, starting in [first, end)."""
    blobs = conn.execute(
        "SELECT data FROM rollup_chunks WHERE series_id = ? AND day >= ? AND day <= ? ORDER BY day",
        (series_id, first // DAY, (end - 1) // DAY),
    ).fetchall()
    return [b for (data,) in blobs for b in decode_day(data) if first <= b.ts < end]


def days(conn: sqlite3.Connection, series_id: int, first: int, end: int) -> list[Bucket]:
    """Day buckets starting in [first, end): the hours grouped, with the day rows."""
    lo = first + (-first) % DAY
    rows = conn.execute(
        "SELECT bucket - bucket % 86400000 AS d, SUM(count), SUM(sum), MIN(min), MAX(max) "
        "FROM rollups WHERE series_id = ? AND res IN (3600000, 86400000) "
        "AND bucket >= ? AND bucket < ? GROUP BY d ORDER BY d",
        (series_id, lo, end + (-end) % DAY),
    ).fetchall()
    return _bucket_rows(rows)


def read(conn: sqlite3.Connection, series_id: int, res: int, start: int, end: int) -> list[Bucket]:
    """Buckets starting in [start - res + 1, end): every bucket that overlaps the range."""
    first = start - res + 1
    if res == DAY:
        return days(conn, series_id, first, end)
    out = read_rows(conn, series_id, res, first, end)
    if res != MINUTE:
        return out
    raw = raw_minutes(conn, series_id, first, end)
    return merge(merge(minute_chunks(conn, series_id, first, end), out), raw)


def count_in(conn: sqlite3.Connection, series_id: int, start: int, end: int) -> int:
    """Good readings of a series in a range, from the hourly buckets (an estimate at the
    edges: whole hours are counted)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(count), 0) FROM rollups WHERE series_id = ? AND res = 3600000 "
        "AND bucket > ? AND bucket < ?",
        (series_id, start - 3_600_000, end),
    ).fetchone()
    return int(row[0])


def choose(span_ms: int, points: int, raw_count: int) -> str:
    """The finest resolution whose points fit `points` pixels: raw when the readings
    themselves fit, else the first of 1m, 1h whose bucket count fits, else 1d."""
    if raw_count <= points:
        return "raw"
    for name in ("1m", "1h"):
        if span_ms / RESOLUTIONS[name] <= points:
            return name
    return "1d"
