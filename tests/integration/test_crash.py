"""kill -9 the gateway while a stub publishes QoS 1 readings: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_stubs.mqtt_device import run_device
from firmware_stubs.scenario import DeviceScript, MetricScript
from tests.conftest import Gateway, Mosquitto

pytestmark = pytest.mark.integration

KILLS = 6


def stored(db: str) -> list[int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [
            ts
            for (ts,) in conn.execute(
                "SELECT r.ts FROM readings r JOIN series s ON s.id = r.series_id "
                "WHERE s.device = 'rg-01' AND s.metric = 'rain_mm' ORDER BY r.ts"
            )
        ]
    finally:
        conn.close()


def test_kill_9_during_ingest_loses_nothing(gateway: Gateway, mosquitto: Mosquitto) -> None:
    # a slow disk: batches wait 50 ms before they commit, so kills land between a message's
    # arrival and its commit, where an early acknowledgement would lose it
    gateway.env = {"STATIONGW_TEST_COMMIT_DELAY_S": "0.05"}
    gateway.start()  # creates the persistent session the broker queues for

    # an independent witness of everything the stub got acknowledged by the broker
    witnessed: dict[int, int] = {}  # seq -> ts

    def witness(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        report = json.loads(m.payload)
        witnessed[report["seq"]] = report["ts"]

    observer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="witness")
    observer.on_message = witness
    observer.connect("127.0.0.1", mosquitto.port)
    observer.subscribe("stations/test/rg-01/telemetry", qos=1)
    observer.loop_start()
    time.sleep(0.3)

    script = DeviceScript(
        id="rg-01", metrics=(MetricScript("rain_mm", ((0.0, 0.0), (30.0, 1.0)), decimals=3),)
    )
    result: dict[str, int] = {}

    def publish() -> None:
        result["sent"] = asyncio.run(
            run_device(
                script,
                station="test",
                host="127.0.0.1",
                port=mosquitto.port,
                interval_s=0.004,
                count=1500,
            )
        )

    publisher = threading.Thread(target=publish)
    publisher.start()
    rng = random.Random()
    for _ in range(KILLS):
        # often right after a restart, while the broker redelivers the backlog
        time.sleep(rng.uniform(0.0, 0.6))
        assert gateway.kill() == -9
        time.sleep(rng.uniform(0.2, 0.8))
        gateway.start()
    publisher.join(60)
    assert result["sent"] == 1500

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(stored(str(gateway.db))) < len(
        set(witnessed.values())
    ):
        time.sleep(0.2)
    observer.loop_stop()
    assert len(witnessed) == 1500
    rows = stored(str(gateway.db))
    assert len(rows) == len(set(rows))  # nothing stored twice
    # nothing lost, nothing invented (two reports stamped in the same millisecond are one
    # reading by the store's key: device, metric, timestamp)
    assert set(rows) == set(witnessed.values())
    conn = sqlite3.connect(gateway.db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
