"""Latency: a crossing reading published → its ticket change stored, under load.

The gateway does not publish an MQTT alert topic yet, so the end point measured is the
`ticket` server-sent event on `/api/events`: the gateway sends it right after the commit
that stored the ticket change (and before the MQTT acknowledgement). A background stream
(`mosquitto_pub -l`, below every threshold) holds the gateway at a given rate; a second
`mosquitto_pub -l` sends probes on another series, alternately above the blue line (opens
the ticket, then notes the level) and back below it (notes the clearing). One probe is in
flight at a time; its latency is from the moment its line is handed to mosquitto_pub to
the moment the bench reads the event.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import queue
import random
import threading
import time
from pathlib import Path

from gateway.bench.procs import Broker, GatewayProc, Publisher, free_port, paced
from gateway.bench.workload import T0_MS, device_id, json_line, one_per_message, write_station

PROBE_RULE = "r4"
ENDPOINT = "ticket stored: the gateway's `ticket` server-sent event, sent right after the commit"


class TicketEvents:
    """Reads `/api/events` in a thread; queues (receive time, ticket) of `ticket` events."""

    def __init__(self, port: int, cookie: str) -> None:
        self.events: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._conn.request("GET", "/api/events", headers={"Cookie": cookie})
        self._resp = self._conn.getresponse()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        name = ""
        # closing the connection ends the read with one of these
        with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
            while line := self._resp.readline():
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    name = text[7:]
                elif text.startswith("data: ") and name == "ticket":
                    self.events.put((time.perf_counter(), json.loads(text[6:])))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def measure(
    broker: Broker,
    folder: Path,
    *,
    tag: str,
    devices: int,
    rules: int,
    rate: float,
    probes: int,
) -> dict[str, float | int | str]:
    station = write_station(folder / tag, tag, devices, rules, broker.port, free_port())
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    load = Publisher(broker.port, f"stations/{tag}/{device_id(0)}/telemetry")
    probe_device = device_id(1)  # rule r4 watches its level_m (blue line at 8 m)
    # with fewer devices than rules / 4, other rules watch the same series: their tickets
    # change too, and are not counted
    probe = Publisher(broker.port, f"stations/{tag}/{probe_device}/telemetry")
    events = TicketEvents(station.http_port, gw.login())
    stop = threading.Event()
    lines = (one_per_message(i) for i in itertools.count())
    loader = threading.Thread(target=paced, args=(load, lines, rate, 3600, stop), daemon=True)
    rng = random.Random(8)
    latencies: list[float] = []
    missed = 0
    try:
        loader.start()
        time.sleep(1.0)  # the load reaches its rate
        for k in range(probes):
            value = 9.0 if k % 2 == 0 else 2.0
            line = json_line(T0_MS + k * 1000, {"level_m": value})
            sent = time.perf_counter()
            probe.write_lines([line])
            deadline = sent + 5.0
            while True:
                try:
                    at, ticket = events.events.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    missed += 1
                    break
                if ticket.get("device") == probe_device and ticket.get("rule") == PROBE_RULE:
                    latencies.append((at - sent) * 1000)
                    break
            time.sleep(rng.uniform(0.03, 0.08))
    finally:
        stop.set()
        loader.join(10)
        events.close()
        load.close()
        probe.close()
        gw.stop()
    return {
        "rate_readings_per_s": round(rate),
        "probes": probes,
        "answered": len(latencies),
        "missed": missed,
        "p50": round(percentile(latencies, 0.50), 2),
        "p99": round(percentile(latencies, 0.99), 2),
        "max": round(max(latencies), 2) if latencies else float("nan"),
    }
