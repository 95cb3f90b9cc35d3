"""`stationgw run` with an MQTT uplink: the gateway is killed (-9) mid-run and started
again; the county receives every reading the station stored, in order, with no gap once
repeats are dropped by seq, and GET /api/uplinks shows the uplink's state."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_stubs.mqtt_device import run_device
from firmware_stubs.scenario import DeviceScript, MetricScript
from tests.conftest import Gateway, Mosquitto
from tests.integration.county import CountyBroker, CountySubscriber

pytestmark = pytest.mark.integration


@pytest.fixture
def county(tmp_path: Path) -> Iterator[CountyBroker]:
    broker = CountyBroker(tmp_path / "county")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _send(device: str, port: int, count: int) -> int:
    script = DeviceScript(
        id=device,
        metrics=(
            MetricScript("rain_mm", ((0.0, 0.5), (60.0, 1.5)), decimals=2),
            MetricScript("battery_v", ((0.0, 4.0),), decimals=2),
        ),
    )
    return asyncio.run(
        run_device(
            script, station="test", host="127.0.0.1", port=port, interval_s=0.02, count=count
        )
    )


def _stored(db: Path) -> list[list[Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT s.device, s.metric, r.ts, r.value, r.flags FROM readings r "
            "JOIN series s ON s.id = r.series_id"
        ).fetchall()
    finally:
        conn.close()
    return sorted([list(r) for r in rows])


def _until(what: Any, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError("not reached")
        time.sleep(0.1)


def test_gateway_uplink_resumes_after_kill_9(
    gateway: Gateway, mosquitto: Mosquitto, county: CountyBroker
) -> None:
    with gateway.config.open("a") as f:
        f.write(f'\n[uplinks.mqtt]\nhost = "127.0.0.1"\nport = {county.port}\nbatch_size = 7\n')
    sub = CountySubscriber(county.port, "test")
    try:
        gateway.start()
        assert _send("rg-01", mosquitto.port, 40) == 40
        _until(lambda: sub.high() > 0)
        gateway.kill()  # -9: whatever was not confirmed goes again after the restart
        assert _send("rg-02", mosquitto.port, 40) == 40  # waits in the station's broker
        gateway.start()
        _until(lambda: len(_stored(gateway.db)) == 160)

        def caught_up() -> bool:
            state = gateway.get("/api/uplinks")
            link = state["uplinks"]["mqtt"]
            return bool(link["connected"] and link["backlog"] == 0)

        _until(caught_up)
        state = gateway.get("/api/uplinks")
        confirmed = state["uplinks"]["mqtt"]["confirmed_seq"]
        _until(lambda: sub.high() >= confirmed)  # PUBACK comes before the delivery to us
        got = sub.accepted()  # fails on a gap or a step back
        readings = sorted(item for topic, _, item in got if topic.endswith("/readings"))
        assert readings == _stored(gateway.db)
        assert got[-1][1] >= confirmed
        assert state["uplinks"]["mqtt"]["dropped"] == 0
        assert {topic.rsplit("/", 1)[1] for topic, _, _ in got} >= {"readings", "health"}
    finally:
        sub.close()
