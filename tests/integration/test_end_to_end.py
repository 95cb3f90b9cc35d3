"""A stub publishes to real Mosquitto; the gateway stores, opens one ticket, serves it."""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_stubs.mqtt_device import run_device
from firmware_stubs.scenario import DeviceScript, MetricScript
from tests.conftest import REPO, Gateway, Mosquitto

pytestmark = pytest.mark.integration


class SSE:
    """Collects server-sent events in a background thread."""

    def __init__(self, url: str, client: httpx.Client | None = None) -> None:
        """`client`: a logged-in client whose session cookie the stream sends."""
        self.cookies = httpx.Cookies(client.cookies) if client is not None else None
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "event stream did not open"

    def _run(self, url: str) -> None:
        with (
            httpx.Client(cookies=self.cookies, timeout=httpx.Timeout(5, read=60)) as c,
            c.stream("GET", url) as r,
        ):
            assert r.status_code == 200, r.read()
            self.connected.set()
            name = ""
            for line in r.iter_lines():
                if self._stop:
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    self.events.put((name, json.loads(line[6:])))

    def next(self, name: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {name!r} event within {timeout} s")
            got, data = self.events.get(timeout=left)
            if got == name:
                return data

    def close(self) -> None:
        self._stop = True


def publish_raw(port: int, topic: str, payloads: list[bytes]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-publisher")
    c.connect("127.0.0.1", port)
    c.loop_start()
    for p in payloads:
        c.publish(topic, p, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def wait_for(check: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached in {timeout} s")


def db_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_stub_to_ticket_to_api_and_events(gateway: Gateway, mosquitto: Mosquitto) -> None:
    gateway.start()
    http = gateway.api("duty_officer", "张三")
    sse = SSE(f"{gateway.url}/api/events", http)
    # rain rises past blue once and stays there: exactly one ticket
    script = DeviceScript(
        id="rg-01",
        metrics=(
            MetricScript("rain_mm", ((0.0, 0.0), (0.5, 3.0), (60.0, 3.5)), decimals=2),
            MetricScript("battery_v", ((0.0, 4.0),), decimals=2),
        ),
    )
    sent = asyncio.run(
        run_device(
            script,
            station="test",
            host="127.0.0.1",
            port=mosquitto.port,
            interval_s=0.05,
            count=30,
        )
    )
    assert sent == 30

    ticket = sse.next("ticket")
    assert (ticket["level"], ticket["device"], ticket["metric"], ticket["rule"]) == (
        "blue",
        "rg-01",
        "rain_mm",
        "rain-burst",
    )
    assert ticket["state"] == "discovered" and ticket["acknowledged_at"] is None

    wait_for(
        lambda: db_rows(gateway.db, "SELECT COUNT(*) FROM readings")[0][0] == 60,
        what="60 readings stored",
    )
    # the hazard ticket of the series, and the warning it issued for its monitoring point
    kinds = db_rows(gateway.db, "SELECT kind, point FROM tickets ORDER BY id")
    assert kinds == [("hazard", "p1"), ("warning", "p1")]

    assert httpx.get(f"{gateway.url}/api/tickets").status_code == 401  # no session
    api = http.get("/api/tickets?open=true").json()
    assert [t["id"] for t in api if t["kind"] == "hazard"] == [ticket["id"]]
    devices = {d["id"]: d for d in http.get("/api/devices").json()}
    assert devices["rg-01"]["metrics"]["battery_v"]["value"] == 4.0
    assert devices["rg-01"]["last_seq"] == 30
    assert devices["rg-01"]["online"] is False  # the stub said offline when it stopped
    now = int(time.time() * 1000)
    series = http.get(
        "/api/readings",
        params={"device": "rg-01", "metric": "rain_mm", "from": now - 600_000, "to": now + 1},
    ).json()
    assert len(series["points"]) == 30

    # acknowledge through the API: stored, announced, listed by the CLI
    r = http.post(f"/api/tickets/{ticket['id']}/ack", json={"note": "已通知"})
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "张三"
    event = sse.next("ticket")
    while event["id"] != ticket["id"]:  # the warning's own ticket events come in between
        event = sse.next("ticket")
    assert event["acknowledged_by"] == "张三"
    with closing(gateway.api("leader", "李四")) as other:
        assert other.post(f"/api/tickets/{ticket['id']}/ack", json={}).status_code == 409
    assert http.post("/api/tickets/999/ack", json={}).status_code == 404
    assert http.post("/api/tickets/1/ack", json={"by": "x"}).status_code == 422  # who: the session
    detail = http.get(f"/api/tickets/{ticket['id']}").json()
    assert [e["kind"] for e in detail["events"]] == ["opened", "acknowledged"]
    # muting a warning's alarm needs a reason; it is announced and kept with who and why
    [warning] = [t for t in http.get("/api/tickets").json() if t["kind"] == "warning"]
    mute = f"/api/alarms/{warning['id']}/mute"
    assert http.post(mute, json={"reason": ""}).status_code == 422
    with closing(gateway.api("viewer")) as viewer:
        assert viewer.post(mute, json={"reason": "看看"}).status_code == 403
    assert http.post(mute, json={"reason": "已电话确认，正在处置"}).status_code == 200
    assert sse.next("mute")["reason"] == "已电话确认，正在处置"
    assert http.get("/api/alarms/muted").json()["muted"][0] | {"at": 0} == {
        "ticket": warning["id"],
        "by": "张三",
        "reason": "已电话确认，正在处置",
        "level": "blue",  # muted at this level: a raise sounds again
        "at": 0,
    }

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "tickets",
            "list",
            "-c",
            str(gateway.config),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    listed = [t for t in json.loads(out.stdout) if t["kind"] == "hazard"]
    assert [(t["id"], t["kind"], t["level"], t["acknowledged_by"]) for t in listed] == [
        (ticket["id"], "hazard", "blue", "张三")
    ]
    for key in ("id", "kind", "level", "state", "device", "metric", "rule", "opened_at"):
        assert key in listed[0]
    sse.close()
    http.close()


def test_bad_payloads_are_quarantined_and_neighbours_kept(
    gateway: Gateway, mosquitto: Mosquitto
) -> None:
    gateway.start()
    http = gateway.api("viewer")
    t = int(time.time() * 1000)
    good = [json.dumps({"ts": t + i, "values": {"rain_mm": 0.5}}).encode() for i in range(3)]
    publish_raw(
        mosquitto.port,
        "stations/test/rg-02/telemetry",
        [
            good[0],
            b"{not json",
            good[1],
            b'{"values": {"rain_mm": "wet"}}',
            good[2],
            json.dumps({"ts": t + 9, "values": {"rain_mm": 1, "colour_idx": 3}}).encode(),
        ],
    )
    publish_raw(mosquitto.port, "stations/test/ghost/telemetry", [good[0]])
    wait_for(
        lambda: len(http.get("/api/quarantine").json()) == 4,
        what="4 quarantined",
    )
    reasons = sorted(q["reason"] for q in http.get("/api/quarantine").json())
    assert reasons[0].startswith("bad payload from rg-02: (top level): Invalid JSON")
    assert (
        reasons[1]
        == "bad payload from rg-02: values.rain_mm: Input should be a valid number"  # strict
    )
    assert reasons[2] == "rg-02: metrics not configured: colour_idx"
    assert reasons[3] == "unknown device 'ghost' (not configured)"
    stored = db_rows(
        gateway.db,
        "SELECT r.ts FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.device = 'rg-02' ORDER BY r.ts",
    )
    assert [ts for (ts,) in stored] == [t, t + 1, t + 2, t + 9]
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'stationgw_quarantined_total{reason="payload"} 2.0' in metrics
    assert "stationgw_readings_stored_total 4.0" in metrics
    assert "stationgw_open_tickets 0.0" in metrics
    log = gateway.log.read_text()
    # two bad payloads from one device: one log line (repeats are counted, not logged)
    assert log.count("quarantined (topic stations/test/rg-02/telemetry): bad payload") == 1
    assert log.count("metrics not configured: colour_idx") == 1
    http.close()
