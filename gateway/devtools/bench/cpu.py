"""CPU: percent of one core used by the gateway (and by Mosquitto) at a fixed rate.

The gateway runs live; `mosquitto_pub -q 1 -l` is fed one reading per message at a steady
1,000 readings/s (a busy township). After a warm-up, the CPU time of each process (user +
system, all threads, from /proc/<pid>/stat) is read at the start and end of a window.
The bare paho subscriber (`paho_sub`) takes the same stream live beside the gateway, so
`own_us_per_reading` (the gateway's CPU per reading minus bare paho's) shows the part the
gateway owns apart from the library's.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

from gateway.devtools.bench.ingest import paho, wait_gateway
from gateway.devtools.bench.procs import (
    Broker,
    Db,
    GatewayProc,
    Publisher,
    cpu_seconds,
    free_port,
    paced,
    stop_process,
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
    topic = f"stations/cpu/{device}/telemetry"
    paho(broker.port, "bench-paho-cpu", topic, "--session-only", timeout=20)
    bare = subprocess.Popen(
        [sys.executable, "-m", "gateway.devtools.bench.paho_sub", "--port", str(broker.port),
         "--client-id", "bench-paho-cpu", "--topic", topic, "--count", str(10**9),
         "--timeout", str(warmup_s + window_s + 120)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    publisher = Publisher(broker.port, topic)
    lines = (one_per_message(i) for i in itertools.count())
    db = Db(station.db)
    try:
        written = paced(publisher, lines, rate, warmup_s)
        gw0, br0, pa0 = cpu_seconds(gw.pid), cpu_seconds(broker.pid), cpu_seconds(bare.pid)
        t0 = time.perf_counter()
        in_window = paced(publisher, lines, rate, window_s)
        gw1, br1, pa1 = cpu_seconds(gw.pid), cpu_seconds(broker.pid), cpu_seconds(bare.pid)
        t1 = time.perf_counter()
        written += in_window
        wait_gateway(db, device, written - 1, 60)
        publisher.close()
        stored = db.count()
    finally:
        publisher.close()
        stop_process(bare)
        gw.stop()
        db.close()
    span = t1 - t0
    gw_pct = 100 * (gw1 - gw0) / span
    br_pct = 100 * (br1 - br0) / span
    return {
        "paho_percent_of_core_at_1000_rps": round(100 * (pa1 - pa0) / span, 1),
        "ratio_gateway_mosquitto": round(gw_pct / max(br_pct, 0.01), 2),
        "own_us_per_reading": round(((gw1 - gw0) - (pa1 - pa0)) / max(in_window, 1) * 1e6, 1),
        "rate_readings_per_s": round(in_window / span),
        "window_s": round(span, 1),
        "percent_of_core_at_1000_rps": round(gw_pct, 1),
        "broker_percent_of_core_at_1000_rps": round(br_pct, 1),
        "lost": written - stored,
    }
