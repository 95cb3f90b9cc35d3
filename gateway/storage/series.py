"""A series as a chart asks for it: raw readings or rollups at one resolution for all."""

from __future__ import annotations

from gateway.storage import rollups
from gateway.storage.store import Store


def series_points(
    store: Store,
    sid: int | None,
    start: int,
    end: int,
    resolution: str,
    limit: int,
) -> list[dict[str, object]]:
    if sid is None:
        return []
    if resolution == "raw":
        return [
            {"ts": t, "value": v, "flags": f}
            for t, v, f in store.readings_by_id(sid, start, end, limit)
        ]
    res = rollups.RESOLUTIONS[resolution]
    if res == rollups.HOUR:  # rows only: straight from SQL to the answer's dicts
        rows = store.conn.execute(
            "SELECT bucket, sum / count, min, max, sum, count FROM rollups "
            "WHERE series_id = ? AND res = ? AND bucket > ? AND bucket < ? "
            "ORDER BY bucket LIMIT ?",
            (sid, res, start - res, end, limit),
        ).fetchall()
        return [
            {"ts": t, "value": v, "min": lo, "max": hi, "sum": s, "count": n}
            for t, v, lo, hi, s, n in rows
        ]
    return [b.to_json() for b in rollups.read(store.conn, sid, res, start, end)[:limit]]


def pick(store: Store, sids: list[int | None], start: int, end: int, points: int) -> str:
    """One resolution for all the series: the finest at which the fullest one fits."""
    span = end - start
    if span / 60_000 > points * 60:  # even a reading a second would not fit: skip counting
        raw = points + 1
    else:
        raw = max((rollups.count_in(store.conn, s, start, end) for s in sids if s), default=0)
    return rollups.choose(span, points, raw)
