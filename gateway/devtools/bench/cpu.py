"""CPU: percent of one core used by the gateway (and by Mosquitto) at a fixed rate.

The gateway runs live; `mosquitto_pub -q 1 -l` is fed one reading per message at a steady
1,000 readings/s (a busy township). After a warm-up, the CPU time of each process (user +
system, all threads, from /proc/<pid>/stat) is read at the start and end of a window.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from gateway.devtools.bench.ingest import wait_gateway
from gateway.devtools.bench.procs import (
    Broker,
    Db,
    GatewayProc,
    Publisher,
    cpu_seconds,
    free_port,
    paced,
)
from gateway.devtools.bench.workload import device_id, one_per_message, write_station


def measure(
    broker: Broker,
    folder: Path,
    *,
    devices: int,
    rules: int,
    rate: float,
    warmup_s: float,
    window_s: float,
) -> dict[str, float | int]:
    station = write_station(folder / "cpu", "cpu", devices, rules, broker.port, free_port())
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    device = device_id(0)
    publisher = Publisher(broker.port, f"stations/cpu/{device}/telemetry")
    lines = (one_per_message(i) for i in itertools.count())
    db = Db(station.db)
    try:
        written = paced(publisher, lines, rate, warmup_s)
        gw0, br0, t0 = cpu_seconds(gw.pid), cpu_seconds(broker.pid), time.perf_counter()
        in_window = paced(publisher, lines, rate, window_s)
        gw1, br1, t1 = cpu_seconds(gw.pid), cpu_seconds(broker.pid), time.perf_counter()
        written += in_window
        wait_gateway(db, device, written - 1, 60)
        publisher.close()
        stored = db.count()
    finally:
        publisher.close()
        gw.stop()
        db.close()
    span = t1 - t0
    return {
        "rate_readings_per_s": round(in_window / span),
        "window_s": round(span, 1),
        "percent_of_core_at_1000_rps": round(100 * (gw1 - gw0) / span, 1),
        "broker_percent_of_core_at_1000_rps": round(100 * (br1 - br0) / span, 1),
        "lost": written - stored,
    }
