"""The box's clock jumps +1 h and -1 h (libfaketime under a real gateway process) while a
warning waits for its acknowledgement: no spurious escalation on the jump forward, none
missed after the jump back; deadlines run on the monotonic clock; readings keep device
time; a device far from the gateway's clock gets a clock-skew warning."""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import RULES, STATION, Gateway, Mosquitto, free_port
from tests.integration.faults import wait_for

pytestmark = pytest.mark.integration

LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
DEADLINE_S = 15  # the warning's acknowledgement deadline in this station

LOOP = f"""
[[people]]
id = "li"
name = "李网格"
phone = "13800000001"
roles = ["grid_member"]
grid = "point:p1"

[[people]]
id = "zhao"
name = "赵值班"
phone = "13800000006"
roles = ["duty_officer"]

[[duty]]
officer = "zhao"
start = "00:00"
end = "00:00"

[tickets.ack_deadline]
blue = "{DEADLINE_S}s"
yellow = "{DEADLINE_S}s"
orange = "{DEADLINE_S}s"
red = "{DEADLINE_S}s"
"""


@pytest.fixture
def faked(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Gateway, Path]]:
    if not LIBFAKETIME:
        pytest.fail("libfaketime is not installed: run the README test command (scripts/test)")
    config = tmp_path / "station.toml"
    http_port = free_port()
    config.write_text(STATION.format(broker_port=mosquitto.port, http_port=http_port) + LOOP)
    (tmp_path / "rules.toml").write_text(RULES)
    offset = tmp_path / "faketime.rc"
    offset.write_text("+0\n")
    gw = Gateway(config, tmp_path / "data" / "station.db", http_port, tmp_path / "gateway.log")
    # the system clock is faked, the monotonic one is not (a real jump moves only the
    # first). libfaketime 0.9.10 breaks time.sleep in that mode; the gateway sleeps only
    # through asyncio and select, which work.
    gw.env = {
        "LD_PRELOAD": LIBFAKETIME[0],
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_CACHE_DURATION": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    gw.start()
    try:
        yield gw, offset
    finally:
        gw.stop()


def get(gw: Gateway, path: str) -> Any:
    if path == "/api/health":  # public
        return httpx.get(f"{gw.url}{path}", timeout=5).json()
    return gw.get(path)  # as a logged-in viewer


def warning_calls(gw: Gateway) -> list[dict[str, Any]]:
    warnings = [t for t in get(gw, "/api/tickets") if t["kind"] == "warning"]
    assert len(warnings) <= 1, warnings
    if not warnings:
        return []  # not issued yet
    calls: list[dict[str, Any]] = get(gw, f"/api/tickets/{warnings[0]['id']}")["calls"]
    return calls


def test_clock_jumps_neither_fire_nor_lose_deadlines(
    faked: tuple[Gateway, Path], mosquitto: Mosquitto
) -> None:
    gw, offset = faked
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rg", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    topic = "stations/test/rg-01/telemetry"

    def send(ts: int, value: float) -> None:
        body = f'{{"ts": {ts}, "seq": 1, "values": {{"rain_mm": {value}}}}}'
        pub.publish(topic, body.encode(), qos=1).wait_for_publish(5)

    device_ts = time.time_ns() // 1_000_000  # the device's clock is right
    send(device_ts, 6.0)  # yellow: the point's grid member is called
    wait_for(lambda: [c["why"] for c in warning_calls(gw)] == ["issued"], "warning issued")
    issued_at = warning_calls(gw)[0]["called_at"]

    offset.write_text("+1h\n")  # the box's clock jumps forward
    wait_for(lambda: get(gw, "/api/health")["clock"]["system_offset_s"] > 3500, "jump seen")
    time.sleep(3)  # ticks run each second: on the system clock the deadline has passed
    spurious = [c for c in warning_calls(gw) if c["why"] != "issued"]

    offset.write_text("-1h\n")  # and back, an hour behind
    wait_for(lambda: get(gw, "/api/health")["clock"]["system_offset_s"] < -3500, "jump back")
    wait_for(
        lambda: any(c["why"] != "issued" for c in warning_calls(gw)),
        "the escalation at the deadline",
        3 * DEADLINE_S,
    )
    # the wave after the deadline: here the duty officer (the point is the only grid step)
    escalated = [c for c in warning_calls(gw) if c["why"] != "issued"]
    late_ms = escalated[0]["called_at"] - issued_at

    send(device_ts - 2 * 3_600_000, 1.0)  # a device whose clock is two hours behind
    wait_for(lambda: "rg-01" in get(gw, "/api/health")["clock"]["device_skew_s"], "skew shown")
    skew_s = get(gw, "/api/health")["clock"]["device_skew_s"]["rg-01"]
    pub.loop_stop()
    pub.disconnect()

    print(f"escalated {late_ms} ms after issue (deadline {DEADLINE_S} s); skew {skew_s} s")
    assert spurious == []  # +1 h: no escalation fired early
    assert len(escalated) == 1  # -1 h: the deadline not missed, fired once
    assert DEADLINE_S * 1000 <= late_ms <= (DEADLINE_S + 3) * 1000
    tickets = get(gw, "/api/tickets")
    assert sorted(t["kind"] for t in tickets) == ["hazard", "warning"]  # nothing new opened
    assert -7300 < skew_s < -7100
    log = gw.log.read_text()
    assert "system clock moved +3600" in log and "clock behind the gateway's by 7" in log
    # readings keep the device's time, whatever the box's clock said
    assert sorted(seqs_stored_ts(gw.db)) == sorted([device_ts, device_ts - 2 * 3_600_000])


def seqs_stored_ts(db: Path) -> list[int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [int(t) for (t,) in conn.execute("SELECT ts FROM readings")]
    finally:
        conn.close()
