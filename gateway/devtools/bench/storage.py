"""Storage: bytes per point of the compacted store, compaction speed, rollup cost on ingest,
and the time to chart 7 days of 50 series through the API.

The data: `series` series (a quarter each of rain, water level, crack and battery) at
1-minute resolution for `days` days. Rain, level and crack come from the firmware stubs'
own scripts with their noise and rounding (`gateway/bench/series.py`), battery from the
workload's solar-day shape. Written through `StationStore.insert_readings` and
`StationStore.record_rollups` (what ingest's commit runs) in transactions of 50,000.

Figures (sizes from SQLite's `dbstat`: pages each table holds):
- `row_table_bytes_per_point`: the `readings` row table's bytes per point, before
  compaction (what every point cost before this store).
- `bytes_per_point`: after compaction (everything older than the 2-day hot window), the
  `chunks` table's bytes over the points it holds; `bytes_per_point_<metric>`: the chunk
  blobs alone per metric.
- `rollup_bytes_per_point`: the rollup rows (hours) and the 1-minute rollup chunks,
  after compaction, over all points (`…_before_compaction`: the hour rows).
- `insert_points_per_s` with rollups, `insert_points_per_s_no_rollups` the same
  transactions' time without the rollup step (both in the one run).
- `compaction_points_per_s`: compaction of all the due series-days.
- `commit_readings_per_s` / `…_no_rollups`: `Ingestor.commit` (ingest's transaction,
  no rules, batches of 200, 50 series of 1-minute readings) with and without the rollup
  step, interleaved in the one run, best of 3 each.
- `chart_query_ms`: `stationgw run` serving the database, one `/api/readings/multi` call
  for the last 7 days of 50 series at `points=1000` (median of 3, after one warm-up);
  `chart_query_ms_per_series_sum`: the same through 50 `/api/readings?points=1000` calls;
  `chart_raw_query_ms`: 50 raw-resolution calls (every reading, across chunks and rows).
"""

from __future__ import annotations

import random
import statistics
import time
import urllib.parse
from pathlib import Path

from gateway.core.batch import Batch
from gateway.core.model import Reading
from gateway.devtools.bench.procs import GatewayProc, free_port, http_json
from gateway.devtools.bench.series import realistic_series
from gateway.devtools.bench.workload import (
    METRICS,
    T0_MS,
    device_id,
    realistic_point,
    write_station,
)
from gateway.ingest.commit import Ingestor
from gateway.storage.compaction import compact_all
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet

DAY_MS = 86_400_000
HOT_MS = 2 * DAY_MS


def _series_points(s: int, minutes: int, rng: random.Random) -> list[tuple[int, float, int]]:
    metric = METRICS[s % len(METRICS)].name
    if metric == "battery_v":
        return [(T0_MS + m * 60_000, realistic_point(metric, s, m, rng), 0) for m in range(minutes)]
    return realistic_series(metric, T0_MS, minutes, seed=s)


def fill(db: Path, series: int, days: int) -> tuple[int, float, float]:
    """Write the data; return (points, seconds of the transactions, seconds of rollups)."""
    store = StationStore(db)
    rng = random.Random(6)
    points = 0
    total_s = rollup_s = 0.0
    try:
        minutes = days * 1440
        batch: list[Reading] = []

        def flush() -> None:
            nonlocal total_s, rollup_s, points
            t = time.perf_counter()
            with store.transaction():
                new = store.insert_readings(batch)
                r = time.perf_counter()
                store.record_rollups(new)
                rollup_s += time.perf_counter() - r
            total_s += time.perf_counter() - t
            points += len(batch)
            batch.clear()

        for s in range(series):
            metric = METRICS[s % len(METRICS)].name
            device = device_id(s // len(METRICS))
            for ts, value, _ in _series_points(s, minutes, rng):
                batch.append(Reading(device, metric, ts, value))
                if len(batch) >= 50_000:
                    flush()
        if batch:
            flush()
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return points, total_s, rollup_s


def commit_rate(db: Path, series: int, minutes: int, rollups: bool) -> float:
    """Readings/s through `Ingestor.commit` (no rules), batches of 200 as a live gateway
    commits them; without rollups the store's rollup step is replaced by nothing."""
    store = StationStore(db)
    if not rollups:
        store.record_rollups = lambda new: None  # type: ignore[method-assign]
    ing = Ingestor(store, RuleSet([]))
    rs = [
        Reading(device_id(s), "level_m", ts, v)
        for m in range(minutes)
        for s in range(series)
        for ts, v, _ in [(T0_MS + m * 60_000, 2.0 + (m % 7) / 100, 0)]
    ]
    t = time.perf_counter()
    try:
        for i in range(0, len(rs), 200):
            ing.commit(Batch(readings=rs[i : i + 200]), now=T0_MS)
    finally:
        store.close()
    return len(rs) / (time.perf_counter() - t)


def table_bytes(store: StationStore) -> dict[str, int]:
    rows = store.conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {str(n): int(b) for n, b in rows}


def measure(
    broker_port: int, folder: Path, *, series: int, days: int
) -> dict[str, float | int | str]:
    devices = (series + len(METRICS) - 1) // len(METRICS)
    station = write_station(folder / "storage", "st", devices, 0, broker_port, free_port())
    station.db.parent.mkdir(parents=True, exist_ok=True)
    points, total_s, rollup_s = fill(station.db, series, days)
    end = T0_MS + days * DAY_MS
    store = StationStore(station.db)
    try:
        before = table_bytes(store)
        done = compact_all(store, end, HOT_MS)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = table_bytes(store)
        per_metric: dict[str, float | int | str] = {}
        for m in ("rain_mm", "level_m", "crack_mm", "battery_v"):
            n, size = store.conn.execute(
                "SELECT SUM(c.count), SUM(length(c.data)) FROM chunks c "
                "JOIN series s ON s.id = c.series_id WHERE s.metric = ?",
                (m,),
            ).fetchone()
            if n:
                per_metric[f"bytes_per_point_{m}"] = round(size / n, 3)
    finally:
        store.close()
    out: dict[str, float | int | str] = {
        "series": series,
        "days": days,
        "points": points,
        "db_bytes": station.db.stat().st_size,
        "row_table_bytes_per_point": round(before["readings"] / points, 2),
        "bytes_per_point": round(after["chunks"] / done.points, 3),
        **per_metric,
        "rollup_bytes_per_point": round(
            (after["rollups"] + after.get("rollup_chunks", 0)) / points, 2
        ),
        "rollup_bytes_per_point_before_compaction": round(before["rollups"] / points, 2),
        "rollup_1m_chunk_bytes_per_point": round(after.get("rollup_chunks", 0) / done.points, 3),
        "compacted_points": done.points,
        "compaction_points_per_s": round(done.points / done.seconds),
        "store": "day chunks (delta-of-delta ts, scaled-integer deltas, zlib) + 2-day row table",
        "insert_points_per_s": round(points / total_s),
        "insert_points_per_s_no_rollups": round(points / (total_s - rollup_s)),
    }
    # ingest's whole commit with and without the rollup step, interleaved, best of 3 each
    with_r, without_r = [], []
    for k in range(3):
        with_r.append(commit_rate(folder / f"c-r{k}.db", 50, 400, rollups=True))
        without_r.append(commit_rate(folder / f"c-n{k}.db", 50, 400, rollups=False))
    out["commit_readings_per_s"] = round(max(with_r))
    out["commit_readings_per_s_no_rollups"] = round(max(without_r))
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    try:
        cookie = gw.login()
        start = end - 7 * DAY_MS
        chart = min(50, series)
        n = len(METRICS)
        keys = [(device_id(s // n), METRICS[s % n].name) for s in range(chart)]
        multi = urllib.parse.urlencode(
            [("series", f"{d}/{m}") for d, m in keys]
            + [("from", start), ("to", end), ("points", 1000)]
        )
        http_json(f"{gw.url}/api/readings/multi?{multi}", 60, cookie)  # warm-up
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            body = http_json(f"{gw.url}/api/readings/multi?{multi}", 60, cookie)
            runs.append((time.perf_counter() - t) * 1000)
        out["chart_resolution"] = body["resolution"]
        out["chart_points"] = sum(len(s["points"]) for s in body["series"])

        def each(extra: dict[str, int]) -> tuple[float, int]:
            ms = 0.0
            n = 0
            for d, m in keys:
                q = urllib.parse.urlencode({"device": d, "metric": m, "from": start, "to": end})
                t = time.perf_counter()
                b = http_json(
                    f"{gw.url}/api/readings?{q}&{urllib.parse.urlencode(extra)}", 60, cookie
                )
                ms += (time.perf_counter() - t) * 1000
                n += len(b["points"])
            return ms, n

        per_series_ms, _ = each({"points": 1000})
        raw_ms, raw_points = each({"limit": 100_000})
    finally:
        gw.stop()
    out["chart_series"] = chart
    out["chart_query_ms"] = round(statistics.median(runs), 1)
    out["chart_query_ms_per_series_sum"] = round(per_series_ms, 1)
    out["chart_raw_query_ms"] = round(raw_ms, 1)
    out["chart_raw_points"] = raw_points
    return out
