"""Disk full: the data folder on a small tmpfs. The gateway stops acknowledging (the broker
keeps the reports), says so in its log and at /api/health, loses nothing it acknowledged,
and catches up when space returns."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Gateway, Mosquitto
from tests.integration.faults import T0, integrity, metric, wait_for

pytestmark = pytest.mark.integration

PER_MESSAGE = 100  # reports per message: the disk fills after a few dozen messages


@pytest.fixture
def small_disk(gateway: Gateway) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    data = gateway.db.parent
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(data)], check=True)
    try:
        yield data
    finally:
        gateway.stop()
        subprocess.run(["umount", "-l", str(data)], check=False)


def message(n: int) -> bytes:
    return json.dumps(
        [
            {
                "ts": T0 + (n * PER_MESSAGE + i) * 1000,
                "seq": n * PER_MESSAGE + i,
                "values": {"rain_mm": 0.5},
            }
            for i in range(PER_MESSAGE)
        ]
    ).encode()


def stored_count(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*), COUNT(DISTINCT ts) FROM readings").fetchone()[0])
    finally:
        conn.close()


def test_disk_full_stops_acks_and_resumes(
    gateway: Gateway, mosquitto: Mosquitto, small_disk: Path
) -> None:
    gateway.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="filler", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    sent = 0

    def store_error() -> object:
        return httpx.get(f"{gateway.url}/api/health", timeout=5).json()["store"]["error"]

    while store_error() is None:
        assert sent < 400, "the 512 KiB disk never filled"
        pub.publish("stations/test/rg-01/telemetry", message(sent), qos=1).wait_for_publish(5)
        sent += 1
        time.sleep(0.05)
    for _ in range(20):  # and more while full: the broker must keep them
        pub.publish("stations/test/rg-01/telemetry", message(sent), qos=1).wait_for_publish(5)
        sent += 1
    health = httpx.get(f"{gateway.url}/api/health", timeout=5).json()
    assert health["status"] == "degraded"
    assert "full" in health["store"]["error"]
    acks_full = metric(gateway, "stationgw_mqtt_acks_total")
    time.sleep(3)  # retries go on with backoff, acknowledgements must not
    assert metric(gateway, "stationgw_mqtt_acks_total") == acks_full
    assert metric(gateway, "stationgw_commit_failures_total") >= 2
    assert "store refused a batch" in gateway.log.read_text()

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    wait_for(lambda: store_error() is None, "store accepting again", 60)
    wait_for(lambda: stored_count(gateway.db) == sent * PER_MESSAGE, "every report stored", 60)
    wait_for(
        # (>=: the gateway's own retained availability message is acknowledged too)
        lambda: metric(gateway, "stationgw_mqtt_acks_total") >= sent,
        "every message acknowledged",
    )
    pub.loop_stop()
    pub.disconnect()
    print(f"disk full after {sent - 20} messages; {sent * PER_MESSAGE} readings stored after")
    assert integrity(gateway.db) == "ok"
    assert "store accepts batches again" in gateway.log.read_text()
