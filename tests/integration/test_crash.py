"""kill -9 the gateway while a stub publishes QoS 1 readings: nothing lost, nothing twice.

Also the narrowest crash window: after the SQLite commit, before the MQTT acknowledgement
(a test-only hook makes the gateway die exactly there)."""

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
from tests.integration.faults import (
    Publisher,
    integrity,
    launch,
    metric,
    seqs_stored,
    wait_for,
)

pytestmark = pytest.mark.integration

KILLS = 20
READINGS = 1500


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


@pytest.mark.slow
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
                interval_s=0.01,
                count=READINGS,
            )
        )

    publisher = threading.Thread(target=publish)
    publisher.start()
    rng = random.Random()
    checks: list[str] = []
    for _ in range(KILLS):
        # often right after a restart, while the broker redelivers the backlog
        time.sleep(rng.uniform(0.0, 0.6))
        assert gateway.kill() == -9
        checks.append(integrity(gateway.db))  # every time, on the file the kill left
        time.sleep(rng.uniform(0.1, 0.5))
        gateway.start()
    publisher.join(90)
    assert result["sent"] == READINGS

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(stored(str(gateway.db))) < len(
        set(witnessed.values())
    ):
        time.sleep(0.2)
    observer.loop_stop()
    assert checks == ["ok"] * KILLS
    assert len(witnessed) == READINGS
    rows = stored(str(gateway.db))
    print(
        f"{KILLS} kills: {len(witnessed)} reports acknowledged by the broker "
        f"({len(set(witnessed.values()))} distinct timestamps), {len(set(rows))} stored, "
        f"{len(rows) - len(set(rows))} twice, integrity {checks.count('ok')}/{KILLS} ok"
    )
    assert len(rows) == len(set(rows))  # nothing stored twice
    # nothing lost, nothing invented (two reports stamped in the same millisecond are one
    # reading by the store's key: device, metric, timestamp)
    assert set(rows) == set(witnessed.values())
    assert integrity(gateway.db) == "ok"


def test_crash_between_commit_and_ack_is_redelivered_and_stored_once(
    gateway: Gateway, mosquitto: Mosquitto
) -> None:
    gateway.start()  # the persistent session exists: the broker queues for it
    gateway.stop()
    pub = Publisher(mosquitto.port)
    for seq in range(300):
        pub.send(seq)
    wait_for(lambda: len(pub.acked) == 300, "broker acknowledged all 300")
    pub.close()

    # dies right after its first commit, before acknowledging that batch
    proc = launch(gateway, {"STATIONGW_TEST_CRASH_AFTER_COMMITS": "1"})
    assert proc.wait(30) == 70
    committed = len(seqs_stored(gateway.db))
    assert committed > 0

    gateway.start()  # the broker redelivers the unacknowledged batch
    wait_for(lambda: len(seqs_stored(gateway.db)) >= 300, "all 300 stored")
    wait_for(lambda: metric(gateway, "stationgw_mqtt_acks_total") >= 300 - committed, "acks")
    rows = seqs_stored(gateway.db)
    duplicates = metric(gateway, "stationgw_readings_duplicate_total")
    print(f"died after committing {committed}; redelivered and recognised {duplicates:.0f}")
    assert rows == list(range(300))  # each once
    # every reading of the batch that died unacknowledged came back and was recognised
    assert duplicates == committed
    assert integrity(gateway.db) == "ok"
