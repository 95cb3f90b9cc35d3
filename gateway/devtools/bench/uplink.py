"""Uplinks: what the outbox costs the ingest commit, and how fast a backlog drains.

- Outbox overhead: the same readings (batches of 2,000, 500 devices) committed through
  `Ingestor.commit` into two databases, one with an uplink configured (the outbox filled
  in the commit) and one without, batch by batch alternately so that both see the same
  machine. No rules: the store alone, so the ratio is the worst case (rules make the
  commit dearer and the outbox's share smaller).
- Drain: `backlog` readings waiting in the outbox (as after an outage), then the uplink
  started alone against a local server until the far side confirmed the last one: MQTT
  against the bench's Mosquitto (QoS 1, PUBACK), InfluxDB v1 `/write` against a local
  influxd (Debian's 1.x), whose count is checked afterwards. The v2 mode posts the same
  body through influxdb-client. The issue's goal is a 1-hour backlog at 1,000 readings/s
  (3.6 M readings) in under a minute; `drain_1h_s` is 3.6 M over the measured rate, an
  extrapolation when `backlog` is smaller (it is in --quick).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway.config.station import Config, parse_config
from gateway.core.batch import Batch
from gateway.core.model import Reading
from gateway.devtools.bench.influxd import InfluxServer
from gateway.ingest.commit import Ingestor
from gateway.tickets.store import StationStore
from gateway.uplinks import outbox
from gateway.uplinks.service import Uplinks
from rules.evaluator import RuleSet

HOUR_AT_1000 = 3_600_000
T0 = 1_780_000_000_000


def _readings(start: int, n: int, devices: int = 500) -> list[Reading]:
    return [
        Reading(f"dev-{i % devices:04d}", "level_m", T0 + (i // devices) * 1000, (i % 997) / 100)
        for i in range(start, start + n)
    ]


def outbox_overhead(folder: Path, readings: int, batch: int = 2000) -> dict[str, Any]:
    stores = {name: StationStore(folder / f"ingest-{name}.db") for name in ("off", "on")}
    with stores["on"].transaction():
        outbox.configure(stores["on"].conn, ["bench"])
    ingestors = {k: Ingestor(s, RuleSet([])) for k, s in stores.items()}
    spent = dict.fromkeys(stores, 0.0)
    for start in range(0, readings, batch):
        rs = _readings(start, min(batch, readings - start))
        for name in ("off", "on") if (start // batch) % 2 else ("on", "off"):
            t = time.perf_counter()
            ingestors[name].commit(Batch(readings=rs), T0)
            spent[name] += time.perf_counter() - t
    queued = outbox.status(stores["on"].conn).rows
    for s in stores.values():
        s.close()
    off = readings / spent["off"]
    on = readings / spent["on"]
    return {
        "ingest_readings_per_s_outbox_off": round(off),
        "ingest_readings_per_s_outbox_on": round(on),
        "outbox_ingest_ratio": round(on / off, 3),
        "outbox_rows_queued": queued,
    }


def _config(folder: Path, uplinks: dict[str, Any]) -> Config:
    raw: dict[str, object] = {
        "station": {"id": "bench", "name": "bench"},
        "database": {"path": "station.db"},
        "uplinks": uplinks,
    }
    folder.mkdir(parents=True, exist_ok=True)
    return parse_config(raw, folder / "station.toml")


def _fill(cfgs: list[Config], backlog: int) -> None:
    """The backlog in the first config's database, with a cursor for every config's
    uplink, then copied to the others: each drain starts from the same outbox, written
    once (3.6 M readings take ~25 s to write)."""
    db = cfgs[0].database.path
    store = StationStore(db)
    with store.transaction():
        outbox.configure(store.conn, [n for cfg in cfgs for n in cfg.uplinks.names()])
    for start in range(0, backlog, 50_000):  # as 2,000-reading commits (batch_max) left it
        with store.transaction():
            for s in range(start, min(start + 50_000, backlog), 2000):
                outbox.add_readings(store.conn, _readings(s, min(2000, backlog - s)))
    store.close()  # the last connection: the WAL is checkpointed into the file
    for cfg in cfgs[1:]:
        shutil.copyfile(db, cfg.database.path)


def _drain(cfg: Config, backlog: int) -> float:
    """Seconds from the uplink's start until the far side confirmed the whole backlog."""

    async def run() -> float:
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(writer, StationStore, cfg.database.path)
        uplinks = Uplinks(cfg, cfg.database.path, writer, store, lambda: time.time_ns() // 10**6)
        (name,) = cfg.uplinks.names()
        feed = uplinks.feeds[name]
        t = time.perf_counter()
        await uplinks.start()
        try:
            deadline = time.monotonic() + 600
            while feed.confirmed < backlog:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: drain not done: {uplinks.links[0].status()}")
                await asyncio.sleep(0.01)
            return time.perf_counter() - t
        finally:
            await uplinks.stop()
            await loop.run_in_executor(writer, store.close)
            writer.shutdown(wait=True)

    return asyncio.run(run())


def measure(
    broker_port: int, folder: Path, *, backlog: int, ingest_readings: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"backlog_readings": backlog}
    folder.mkdir(parents=True, exist_ok=True)
    out |= outbox_overhead(folder, ingest_readings)

    mqtt_cfg = _config(
        folder / "mqtt", {"mqtt": {"host": "127.0.0.1", "port": broker_port, "station": "bench"}}
    )
    influx = InfluxServer(folder / "influxd")
    influx_cfg = _config(
        folder / "influx", {"influx": {"url": influx.url, "mode": "v1", "database": "county"}}
    )
    _fill([mqtt_cfg, influx_cfg], backlog)
    s = _drain(mqtt_cfg, backlog)
    out["mqtt_drain_readings_per_s"] = round(backlog / s)
    out["mqtt_drain_1h_s"] = round(HOUR_AT_1000 / (backlog / s), 1)

    influx.start()
    try:
        influx.query("CREATE DATABASE county")
        s = _drain(influx_cfg, backlog)
        (count,) = influx.query('SELECT COUNT("value") FROM "reading"', "county")
        values: Any = count["values"]
        out["influx_drain_readings_per_s"] = round(backlog / s)
        out["influx_drain_1h_s"] = round(HOUR_AT_1000 / (backlog / s), 1)
        out["influx_lost"] = backlog - int(values[0][1])
    finally:
        influx.stop()
    return out
