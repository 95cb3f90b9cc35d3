"""Latency: a crossing reading published → its ticket stored and its alert published.

The station of this measurement has one responder at township level and the MQTT alert
channel on: a reading above the blue line opens a warning ticket, the commit that stores it
wakes the notification dispatcher, and the call goes out as a JSON alert on
`stations/<station>/alerts`. Every device of this station has a monitoring point of its
own, and a warning is per point. A background stream (`mosquitto_pub -l`, below every
threshold) holds the gateway at a given rate; the bench's own paho client sends the probes
and listens for the alerts. Probe k crosses the blue line of device k + 1's water level, at
a point with no warning yet, so every probe issues a new warning and calls someone. One
probe is in flight at a time; its latency runs from the moment it is handed to paho to the
moment the alert for its point arrives. The warning's `ticket` server-sent event (sent
right after the commit, before the alert) is timed too, as `ticket_p50`/`ticket_p99`.
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

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.devtools.bench.procs import Broker, GatewayProc, Publisher, free_port, paced
from gateway.devtools.bench.workload import (
    ALERT_TOPIC,
    METRICS,
    T0_MS,
    device_id,
    json_line,
    one_per_message,
    write_station,
)

ENDPOINT = (
    "ticket stored and alert published: the JSON alert on stations/<station>/alerts, "
    "sent by the notification dispatcher after the commit that opened the ticket"
)


class AlertClient:
    """The bench's paho client: publishes probes, queues (receive time, alert) it hears."""

    def __init__(self, port: int, station: str) -> None:
        self.alerts: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{station}")
        self._client.on_connect = lambda c, *_: c.subscribe(
            ALERT_TOPIC.replace("{station}", station), qos=1
        )
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the bench's alert listener did not subscribe within 10 s")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(ValueError):
            self.alerts.put((time.perf_counter(), json.loads(msg.payload)))

    def publish(self, topic: str, line: bytes) -> float:
        """Hand a probe to paho (QoS 1); return when."""
        at = time.perf_counter()
        self._client.publish(topic, line.rstrip(b"\n"), qos=1)
        return at

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


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


def _first(
    events: queue.Queue[tuple[float, dict[str, object]]],
    match: dict[str, object],
    deadline: float,
    passed_by_point: dict[object, float] | None = None,
) -> tuple[float, dict[str, object]] | None:
    """The first queued item whose fields equal `match`, waiting until `deadline`. Items
    passed over go into `passed_by_point` under their "point", with their arrival time:
    an alert read while waiting for another probe's is kept for its own."""
    while True:
        try:
            at, item = events.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            return None
        if all(item.get(k) == v for k, v in match.items()):
            return at, item
        if passed_by_point is not None:
            passed_by_point.setdefault(item.get("point"), at)


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
    if probes >= devices:
        raise ValueError(
            f"{probes} probes need more than {probes} devices: each probe issues a warning "
            "at a point of its own"
        )
    station = write_station(
        folder / tag, tag, devices, rules, broker.port, free_port(), alerts=True
    )
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    load = Publisher(broker.port, f"stations/{tag}/{device_id(0)}/telemetry")
    events = TicketEvents(station.http_port, gw.login())
    probe = AlertClient(broker.port, tag)
    stop = threading.Event()
    lines = (one_per_message(i) for i in itertools.count())
    loader = threading.Thread(target=paced, args=(load, lines, rate, 3600, stop), daemon=True)
    rng = random.Random(8)
    to_alert: list[float] = []
    to_ticket: list[float] = []
    missed = 0
    early: dict[object, float] = {}  # alerts for other points (or before their ticket's event)
    level = METRICS[0]
    try:
        loader.start()
        time.sleep(1.0)  # the load reaches its rate
        for k in range(probes):
            device, point = device_id(1 + k), f"p{1 + k}"
            line = json_line(T0_MS + k * 1000, {level.name: level.levels[0] + 1.0})
            sent = probe.publish(f"stations/{tag}/{device}/telemetry", line)
            deadline = sent + 5.0
            ticket = _first(events.events, {"kind": "warning", "point": point}, deadline)
            if ticket is None:
                missed += 1
                continue
            to_ticket.append((ticket[0] - sent) * 1000)
            alert_at = early.pop(point, None)
            if alert_at is None:
                alert = _first(probe.alerts, {"point": point}, deadline, early)
                if alert is None:
                    missed += 1
                    continue
                alert_at = alert[0]
            to_alert.append((alert_at - sent) * 1000)
            time.sleep(rng.uniform(0.03, 0.08))
    finally:
        stop.set()
        loader.join(10)
        events.close()
        probe.close()
        load.close()
        gw.stop()
    return {
        "rate_readings_per_s": round(rate),
        "probes": probes,
        "answered": len(to_alert),
        "missed": missed,
        "p50": round(percentile(to_alert, 0.50), 2),
        "p99": round(percentile(to_alert, 0.99), 2),
        "max": round(max(to_alert), 2) if to_alert else float("nan"),
        "ticket_p50": round(percentile(to_ticket, 0.50), 2),
        "ticket_p99": round(percentile(to_ticket, 0.99), 2),
    }
