"""Restart after a power cut: a year of one-minute data from 200 series on disk.

The database is made directly, as the storage tiers leave it after a year with the
default `[storage]` (hot 2 d, raw kept 90 d, 1-minute rollups 730 d, hours forever): raw
rows for the hot days, one compressed chunk per series-day for the older days within
90 d, a 1-minute rollup chunk per series-day for the whole year, hourly rollup rows for
the whole year. Chunks are encoded by the storage's own encoder once per series and
template day; each day's chunk is that body with the day's first timestamp put in and
compressed again (what compaction would write for those values on that day).

The station: 50 devices × 4 metrics (200 series) and the township's 200 rules, whose state
(rain accumulations over 3 h, crack rates over 6 h) is refilled from the stored readings
at start. `ready_s`: process start → the page answers (/api/health) and a reading
published while the gateway was down is stored (its acknowledgement follows that
commit); after a clean stop, and after `kill -9`. `rule_state_ms`: restoring the rules'
state from the database alone (`gateway.ingest.commit.restore`).
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
import zlib
from pathlib import Path

from gateway.config.station import load_config
from gateway.devtools.bench.procs import Broker, Db, GatewayProc, free_port, http_json
from gateway.devtools.bench.township import TownshipLoad, township_rules
from gateway.devtools.bench.workload import METRICS, device_id, realistic_point, write_station
from gateway.ingest.commit import restore
from gateway.ingest.rules_loader import RulesLoader
from gateway.storage import chunks, rollups, tiers
from gateway.storage.store import Store
from gateway.tickets.store import StationStore

DEVICES = 50  # × 4 metrics: 200 series
DAY_MS = tiers.DAY_MS
MINUTE_MS = 60_000
TEMPLATES = 7  # distinct days of values per series


def _varint_end(buf: bytes, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1


def _varint(n: int) -> bytes:
    out = bytearray()
    z = n << 1 if n >= 0 else (-n << 1) - 1
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


class Template:
    """A chunk's blob split around its first timestamp, to be put on any day."""

    def __init__(self, blob: bytes, head_varints: int) -> None:
        self.version = blob[:1]
        body = zlib.decompress(blob[1:])
        pos = 0
        for _ in range(head_varints):  # count (and, for a table, the number of columns)
            pos = _varint_end(body, pos)
        self.head = body[:pos]
        self.tail = body[_varint_end(body, pos) :]

    def on(self, first_ts: int) -> bytes:
        body = self.head + _varint(first_ts) + self.tail
        return self.version + zlib.compress(body, 9)


def build_db(path: Path, now_ms: int, days: int) -> int:
    """The database of a year (`days`) of one-minute data; return the points it holds."""
    store = Store(path)
    conn = store.conn
    store.register_devices(device_id(d) for d in range(DEVICES))
    today = now_ms // DAY_MS
    first_day = today - days + 1
    hot_from = today - 2  # rows: the last two days and today up to now
    raw_from = today - 90  # raw chunks within retention
    rng = random.Random(20)
    points = 0
    with store.transaction():
        sids = [
            (store.series_id(device_id(d), m.name), m.name, d * 4 + k)
            for d in range(DEVICES)
            for k, m in enumerate(METRICS)
        ]
        for sid, metric, n in sids:
            raw_t: list[Template] = []
            min_t: list[Template] = []
            hours: list[list[tuple[int, float, float, float]]] = []
            for t in range(TEMPLATES):
                day0 = (first_day + t) * DAY_MS
                pts = [
                    (day0 + i * MINUTE_MS, realistic_point(metric, n, t * 1440 + i, rng), 0)
                    for i in range(1440)
                ]
                raw_t.append(Template(chunks.encode(pts), 1))
                min_t.append(Template(rollups.encode_day(rollups.minutes_of_points(pts)), 2))
                agg = rollups.aggregate((sid, ts, v, f) for ts, v, f in pts)
                hours.append([(b - day0, a[1], a[2], a[3]) for (_, _, b), a in sorted(agg.items())])
            raw_rows, min_rows, hour_rows, rows = [], [], [], []
            for day in range(first_day, today + 1):
                t = (day - first_day) % TEMPLATES
                start = day * DAY_MS
                if day < hot_from:
                    min_rows.append((sid, day, min_t[t].on(start)))
                    if day >= raw_from:
                        blob = raw_t[t].on(start)
                        raw_rows.append((sid, day, start, start + 1439 * MINUTE_MS, 1440, blob))
                        points += 1440
                else:  # the hot days: rows, as ingest stored them
                    for i in range(1440):
                        ts = start + i * MINUTE_MS
                        if ts > now_ms:
                            break
                        rows.append((sid, ts, realistic_point(metric, n, i, rng), 0))
                    points += len(rows)
                hour_rows += [
                    (sid, rollups.HOUR, start + off, 60, s, lo, hi) for off, s, lo, hi in hours[t]
                ]
            conn.executemany(
                "INSERT INTO chunks (series_id, day, first_ts, last_ts, count, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                raw_rows,
            )
            conn.executemany(
                "INSERT INTO rollup_chunks (series_id, day, data) VALUES (?, ?, ?)", min_rows
            )
            conn.executemany(
                "INSERT INTO rollups (series_id, res, bucket, count, sum, min, max) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                hour_rows,
            )
            conn.executemany(
                "INSERT INTO readings (series_id, ts, value, flags) VALUES (?, ?, ?, ?)", rows
            )
        tiers.bump_gen(conn)
    check = conn.execute(
        "SELECT first_ts, data FROM chunks ORDER BY series_id, day LIMIT 1"
    ).fetchone()
    if check is not None and chunks.decode(check[1])[0][0] != check[0]:
        raise AssertionError("a spliced chunk does not decode to its own first timestamp")
    store.close()
    return points


def _ready(gw: GatewayProc, db: Db, device: str, seq: int, timeout: float = 120) -> float:
    """Start the gateway; seconds until /api/health answers and `seq` of `device` is stored."""
    assert gw.proc is None or gw.proc.poll() is not None
    t0 = time.perf_counter()
    gw.start_only()
    page = stored = False
    deadline = t0 + timeout
    while time.perf_counter() < deadline and not (page and stored):
        if not page:
            with contextlib.suppress(OSError, ValueError):  # not answering yet: again
                http_json(f"{gw.url}/api/health", 1)
                page = True
        if not stored:
            last = db.last_seq(device)
            stored = last is not None and last >= seq
        time.sleep(0.01)
    return time.perf_counter() - t0


def measure(broker: Broker, folder: Path, *, days: int) -> dict[str, float | int | str]:
    folder = folder / "restart"
    station = write_station(
        folder, "restart", DEVICES, 1, broker.port, free_port(), storage="[storage]\n"
    )
    (folder / "rules.toml").write_text(township_rules())
    t = time.perf_counter()
    points = build_db(station.db, int(time.time() * 1000), days)
    made_s = time.perf_counter() - t
    size_mb = station.db.stat().st_size / 1e6
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    load = TownshipLoad(broker.port, station.station)
    db = Db(station.db)
    out: dict[str, float | int | str] = {}
    try:
        gw.start()  # the first start: the gateway's session, rule state from one report each
        for d in range(DEVICES):
            load.publish(d)
        seq = load.seq
        _wait(db, device_id(DEVICES - 1), seq[DEVICES - 1] - 1)
        for how in ("clean", "kill9"):
            if how == "clean":
                gw.stop()
            else:
                assert gw.proc is not None
                gw.proc.send_signal(signal.SIGKILL)
                gw.proc.wait(10)
            load.publish(0)  # waits in the gateway's session while it is down
            key = "ready_s" if how == "clean" else "ready_s_kill9"
            out[key] = round(_ready(gw, db, device_id(0), seq[0] - 1), 2)
            gw.wait_up()
        gw.stop()
    finally:
        load.close()
        gw.stop()
        db.close()
    loader = RulesLoader(load_config(station.config))
    loader.load()
    ruleset = loader.ruleset()
    store = StationStore(station.db)
    try:
        t = time.perf_counter()
        state = restore(ruleset, store)
        out["rule_state_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out["rule_state_keys"] = len(state.levels) + len(state.acc) + len(state.rate)
    finally:
        store.close()
    out.update(
        {
            "series": DEVICES * len(METRICS),
            "days": days,
            "points": points,
            "db_mb": round(size_mb, 1),
            "db_made_s": round(made_s, 1),
        }
    )
    return out


def _wait(db: Db, device: str, seq: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = db.last_seq(device)
        if last is not None and last >= seq:
            return
        time.sleep(0.05)
