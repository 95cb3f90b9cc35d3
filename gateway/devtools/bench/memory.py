"""Memory: the gateway's resident set after a simulated hour, and under 2× overload.

The station has `devices` devices of four metrics each (devices × 4 series) and `rules`
per-series rules. The simulated hour: every device reports all four metrics every
`interval_min` minutes, stamped across one hour of device time, published as fast as the
publisher goes (a paho QoS 1 publisher: the stream spans every device's topic, which
`mosquitto_pub -l` cannot do); the gateway takes it as fast as it can, so an hour passes
in seconds to minutes. `rss_mb_steady` is the resident set once all of it is stored.

Overload: `mosquitto_pub -l` then offers one device's readings at twice the rate the
gateway sustained in the ingest run, for `overload_s` seconds. The gateway's buffer is
bounded (`queue_max`); the rest waits in the broker. `rss_mb_overload` is the largest
resident set sampled (every 0.25 s) during it; the bench then waits for the backlog to be
stored and reports what is missing as `overload_lost`.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from gateway.devtools.bench.procs import (
    BenchError,
    Broker,
    Db,
    GatewayProc,
    Publisher,
    free_port,
    paced,
    rss_mb,
)
from gateway.devtools.bench.workload import (
    METRICS,
    T0_MS,
    device_id,
    one_per_message,
    write_station,
)

OVERLOAD_BASE_MS = T0_MS + 40 * 86_400_000  # after the simulated hour, no key collides


def write_hour(path: Path, station: str, devices: int, interval_min: int) -> int:
    """The simulated hour as `topic<TAB>payload` lines; return the readings it holds."""
    reports = 60 // interval_min
    values = {"level_m": 2.5, "rain_mm": 0.0, "crack_mm": 12.0, "battery_v": 3.9}
    with path.open("wb") as f:
        for r in range(reports):
            lines = []
            for d in range(devices):
                ts = T0_MS + r * interval_min * 60_000 + (d % 60) * 1000
                body = {
                    "ts": ts,
                    "seq": r,
                    "values": {m.name: values[m.name] + (d % 10) * 0.01 for m in METRICS},
                }
                lines.append(
                    f"stations/{station}/{device_id(d)}/telemetry\t"
                    f"{json.dumps(body, separators=(',', ':'))}\n".encode()
                )
            f.write(b"".join(lines))
    return reports * devices * len(METRICS)


class Sampler:
    """Samples a process's RSS in a thread; keeps the peak."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(self.every_s)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def wait_count(db: Db, target: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = db.count()
    while count < target and time.monotonic() < deadline:
        time.sleep(0.5)
        count = db.count()
    return count


def measure(
    broker: Broker,
    folder: Path,
    *,
    devices: int,
    rules: int,
    interval_min: int,
    overload_rate: float,
    overload_s: float,
) -> dict[str, float | int]:
    station = write_station(folder / "mem", "mem", devices, rules, broker.port, free_port())
    hour = station.folder / "hour.txt"
    readings = write_hour(hour, "mem", devices, interval_min)
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    db = Db(station.db)
    out: dict[str, float | int] = {
        "devices": devices,
        "series": devices * len(METRICS),
        "rules": rules,
        "simulated_hour_readings": readings,
        "rss_mb_idle": round(rss_mb(gw.pid), 1),
    }
    try:
        sampler = Sampler(gw.pid)
        t0 = time.perf_counter()
        pub = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.devtools.bench.multipub",
                "--port",
                str(broker.port),
                str(hour),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if pub.returncode != 0:
            raise BenchError(f"multipub failed: {pub.stderr[-1000:]}")
        stored = wait_count(db, readings, 120 + readings / 500)
        out["simulated_hour_s"] = round(time.perf_counter() - t0, 1)
        out["simulated_hour_lost"] = readings - stored
        time.sleep(2.0)
        out["rss_mb_peak_during_hour"] = round(sampler.stop(), 1)
        out["rss_mb_steady"] = round(rss_mb(gw.pid), 1)

        device = device_id(0)
        publisher = Publisher(broker.port, f"stations/mem/{device}/telemetry")
        lines = (one_per_message(i, OVERLOAD_BASE_MS) for i in itertools.count())
        sampler = Sampler(gw.pid)
        t1 = time.perf_counter()
        written = paced(publisher, lines, overload_rate, overload_s)
        offered_s = time.perf_counter() - t1
        out["rss_mb_overload"] = round(sampler.stop(), 1)
        out["overload_offered_readings_per_s"] = round(written / offered_s)
        out["overload_s"] = round(offered_s, 1)
        final = wait_count(db, stored + written, 120 + written / 500)
        out["overload_drained_after_s"] = round(time.perf_counter() - t1 - offered_s, 1)
        publisher.close()
        out["overload_lost"] = stored + written - final
        out["rss_mb_after_overload"] = round(rss_mb(gw.pid), 1)
    finally:
        gw.stop()
        db.close()
    return out
