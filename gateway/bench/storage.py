"""Storage: bytes per point of the store as it is today, and the time to chart 50 series.

The store today is the row table `readings (series_id, ts, value, flags)`, a WITHOUT ROWID
B-tree keyed by (series, time). There is no compressed store yet (a later issue), so
`bytes_per_point` and `row_table_bytes_per_point` are the same figure: the database
file's size (after a WAL checkpoint) over the points it holds.

The data: `series` series (a quarter each of rain, water level, crack and battery, with
realistic shapes) at 1-minute resolution for `days` days, written through the gateway's
own `Store.insert_readings` in transactions of 50,000. Then `stationgw run` serves the
database and the bench asks `/api/readings` for the last 7 days of 50 series, one after
the other, as a chart would: `chart_query_ms` is the total of the 50 answers;
`chart_sql_ms` is the same 50 series read with `Store.readings` directly, without HTTP and
JSON.
"""

from __future__ import annotations

import random
import time
import urllib.parse
from pathlib import Path

from gateway.bench.procs import GatewayProc, free_port, http_json
from gateway.bench.workload import METRICS, T0_MS, device_id, realistic_point, write_station
from gateway.model import Reading
from gateway.store import Store

DAY_MS = 86_400_000


def fill(db: Path, series: int, days: int) -> tuple[int, float]:
    """Write the data; return (points, seconds spent in insert_readings)."""
    store = Store(db)
    rng = random.Random(6)
    points = 0
    insert_s = 0.0
    try:
        minutes = days * 1440
        chunk = max(1, 50_000 // minutes) if minutes < 50_000 else 1
        for first in range(0, series, chunk):
            batch: list[Reading] = []
            for s in range(first, min(series, first + chunk)):
                metric = METRICS[s % len(METRICS)].name
                device = device_id(s // len(METRICS))
                for m in range(minutes):
                    value = realistic_point(metric, s, m, rng)
                    batch.append(Reading(device, metric, T0_MS + m * 60_000, value))
            for start in range(0, len(batch), 50_000):
                part = batch[start : start + 50_000]
                t = time.perf_counter()
                with store.transaction():
                    store.insert_readings(part)
                insert_s += time.perf_counter() - t
                points += len(part)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return points, insert_s


def measure(
    broker_port: int, folder: Path, *, series: int, days: int
) -> dict[str, float | int | str]:
    devices = (series + len(METRICS) - 1) // len(METRICS)
    station = write_station(folder / "storage", "st", devices, 0, broker_port, free_port())
    station.db.parent.mkdir(parents=True, exist_ok=True)
    points, insert_s = fill(station.db, series, days)
    size = station.db.stat().st_size
    out: dict[str, float | int | str] = {
        "series": series,
        "days": days,
        "points": points,
        "db_bytes": size,
        "bytes_per_point": round(size / points, 2),
        "row_table_bytes_per_point": round(size / points, 2),
        "store": "row table (readings: series_id, ts, value, flags; WITHOUT ROWID)",
        "insert_points_per_s": round(points / insert_s),
    }
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    try:
        cookie = gw.login()
        end = T0_MS + days * DAY_MS
        start = end - 7 * DAY_MS
        chart = min(50, series)
        per_series: list[float] = []
        returned = 0
        for s in range(chart):
            q = urllib.parse.urlencode(
                {
                    "device": device_id(s // len(METRICS)),
                    "metric": METRICS[s % len(METRICS)].name,
                    "from": start,
                    "to": end,
                    "limit": 100_000,
                }
            )
            t = time.perf_counter()
            body = http_json(f"{gw.url}/api/readings?{q}", 60, cookie)
            per_series.append((time.perf_counter() - t) * 1000)
            returned += len(body["points"])
    finally:
        gw.stop()
    # the same 50 series straight from SQLite: how much of the answer is the query
    reader = Store(station.db, writer=False)
    try:
        t = time.perf_counter()
        for s in range(chart):
            reader.readings(
                device_id(s // len(METRICS)), METRICS[s % len(METRICS)].name, start, end, 100_000
            )
        out["chart_sql_ms"] = round((time.perf_counter() - t) * 1000, 1)
    finally:
        reader.close()
    out["chart_series"] = chart
    out["chart_points"] = returned
    out["chart_query_ms"] = round(sum(per_series), 1)
    out["chart_query_ms_per_series_max"] = round(max(per_series), 1)
    return out
