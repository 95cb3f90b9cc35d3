"""Rollups: per series and bucket (1 min, 1 h, 1 UTC day) count, sum, min, max.

Kept incrementally: the readings a batch stored as new (duplicates are not new) are
aggregated in memory (`aggregate`, pure) and added to the stored buckets in the same
transaction (`record`), so a late reading lands in its old bucket and a redelivery counts
once. Only good readings (flags == 0) are rolled up: a value the fault screen flagged (out
of the sensor's range, stuck, impossible jump) would distort a chart's min, max and mean;
raw points keep them, with their flags. Buckets are UTC: a day is a UTC day.

1-minute buckets older than the hot window are compacted like readings, one chunk per
series per UTC day (`rollup_chunks`); a late reading's increment is a row again until the
next compaction combines it in. Hourly and daily buckets stay rows (24 and 1 a day).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from gateway import chunks

RESOLUTIONS: dict[str, int] = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
MINUTE = 60_000
DAY = 86_400_000

Key = tuple[int, int, int]  # (series id, res ms, bucket start ms)
Agg = list[float]  # [count, sum, min, max]

_UPSERT = (
    "INSERT INTO rollups (series_id, res, bucket, count, sum, min, max) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, res, bucket) DO UPDATE SET "
    "count = count + excluded.count, sum = sum + excluded.sum, "
    "min = min(min, excluded.min), max = max(max, excluded.max)"
)


@dataclass(frozen=True, slots=True)
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


def aggregate(points: Iterable[tuple[int, int, float, int]]) -> dict[Key, Agg]:
    """(series id, ts, value, flags) -> the buckets' increments, every resolution."""
    out: dict[Key, Agg] = {}
    widths = tuple(RESOLUTIONS.values())
    for sid, ts, value, flags in points:
        if flags:
            continue
        for res in widths:
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
    """Add increments to the stored buckets (inside the caller's transaction)."""
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
    out = {b.ts: b for b in old}
    for b in new:
        o = out.get(b.ts)
        out[b.ts] = combine(o, b) if o else b
    return [out[t] for t in sorted(out)]


def read_rows(
    conn: sqlite3.Connection, series_id: int, res: int, first: int, end: int
) -> list[Bucket]:
    """Bucket rows starting in [first, end)."""
    rows = conn.execute(
        "SELECT bucket, count, sum, min, max FROM rollups WHERE series_id = ? AND res = ? "
        "AND bucket >= ? AND bucket < ? ORDER BY bucket",
        (series_id, res, first, end),
    ).fetchall()
    return [Bucket(int(b), int(c), float(s), float(lo), float(hi)) for b, c, s, lo, hi in rows]


def read(conn: sqlite3.Connection, series_id: int, res: int, start: int, end: int) -> list[Bucket]:
    """Buckets starting in [start - res + 1, end): every bucket that overlaps the range.
    1-minute buckets come from their day chunks and rows (late readings not yet merged)."""
    out = read_rows(conn, series_id, res, start - res + 1, end)
    if res != MINUTE:
        return out
    blobs = conn.execute(
        "SELECT data FROM rollup_chunks WHERE series_id = ? AND day >= ? AND day <= ? ORDER BY day",
        (series_id, (start - res + 1) // DAY, (end - 1) // DAY),
    ).fetchall()
    if not blobs:
        return out
    packed = [b for (data,) in blobs for b in decode_day(data) if start - res < b.ts < end]
    return merge(packed, out)


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
