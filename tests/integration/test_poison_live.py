"""The reproductions of issue 21 against a running `stationgw run` behind Mosquitto on
the deploy configuration: the gateway keeps running, nothing acknowledged is lost, and
what is refused says why."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Gateway
from tests.integration.conftest import DeployBroker
from tests.integration.faults import T0, launch, metric, payload, seqs_stored, wait_for

pytestmark = pytest.mark.integration

TOPIC = "stations/test/rg-01/telemetry"


def device(port: int, name: str = "dev") -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def send(c: mqtt.Client, body: bytes, retain: bool = False) -> None:
    c.publish(TOPIC, body, qos=1, retain=retain).wait_for_publish(10)


def close(c: mqtt.Client) -> None:
    c.loop_stop()
    c.disconnect()


def quarantine(db: Path) -> list[tuple[str, bytes]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [(r, bytes(p)) for r, p in conn.execute("SELECT reason, payload FROM quarantine")]


def battery(db: Path) -> list[float]:
    """The battery_v values stored for rg-01 (the untimed tests number them by value)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT r.value FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE s.device = 'rg-01' AND s.metric = 'battery_v'"
        ).fetchall()
    return [v for (v,) in rows]


def untimed(n: int, seq: bool = False) -> bytes:
    body: dict[str, object] = {"values": {"battery_v": n / 100}}
    if seq:
        body["seq"] = n
    return json.dumps(body).encode()


def test_seq_beyond_2_63_is_quarantined_and_the_gateway_runs_on(
    deploy_gw: Gateway, deploy_broker: DeployBroker
) -> None:
    poison = b'{"ts":1796395547000,"seq":9223372036854775808,"values":{"rain_mm":2}}'
    c = device(deploy_broker.port)
    try:
        send(c, payload(0))
        send(c, poison)
        send(c, payload(1))
        wait_for(lambda: seqs_stored(deploy_gw.db) == [0, 1], "the neighbours stored")
    finally:
        close(c)
    assert deploy_gw.proc is not None and deploy_gw.proc.poll() is None  # still running
    [(reason, body)] = quarantine(deploy_gw.db)
    assert body == poison
    assert reason.endswith("seq: Input should be less than or equal to 9223372036854775807")
    deploy_gw.stop()
    deploy_gw.start()  # acknowledged: not redelivered, no crash loop
    time.sleep(1)
    assert deploy_gw.proc.poll() is None and len(quarantine(deploy_gw.db)) == 1


def test_a_message_the_gateway_dies_on_becomes_a_dead_letter(
    deploy_gw: Gateway, deploy_broker: DeployBroker
) -> None:
    """A crash the process cannot catch (os._exit in a test hook, as a segfault would),
    every time one chosen message is processed; restarted as systemd would."""
    deploy_gw.stop()  # the session exists: the broker queues for it
    poison = json.dumps({"ts": T0, "values": {"rain_mm": 1}, "POISON": 1}).encode()
    c = device(deploy_broker.port)
    try:
        for seq in range(5):
            send(c, payload(seq))
        send(c, poison)
        for seq in range(5, 10):
            send(c, payload(seq))
    finally:
        close(c)
    exits = []
    for _ in range(6):  # systemd's Restart=always, bounded here
        proc = launch(deploy_gw, {"STATIONGW_TEST_CRASH_ON": "POISON"})
        try:
            exits.append(proc.wait(30))
        except subprocess.TimeoutExpired:
            break  # it stays up
    assert exits == [71, 71, 71]  # three deaths on that message, then it is set aside
    deploy_gw.proc.send_signal(signal.SIGTERM)
    deploy_gw.proc.wait(20)
    deploy_gw.start()
    wait_for(lambda: seqs_stored(deploy_gw.db) == list(range(10)), "every neighbour stored")
    [(reason, body)] = quarantine(deploy_gw.db)
    assert body == poison
    assert reason == (
        "dead letter: the gateway stopped 3 times while this message was being processed; "
        "set aside unprocessed"
    )
    print(f"exits {exits}; then running; dead letter: {reason}")


def test_untimed_readings_in_a_burst_and_a_backlog_are_all_stored(
    deploy_gw: Gateway, deploy_broker: DeployBroker
) -> None:
    c = device(deploy_broker.port)
    try:
        for n in range(300):  # a burst: many in one receive millisecond
            c.publish(TOPIC, untimed(n), qos=1)
        wait_for(lambda: len(battery(deploy_gw.db)) >= 300, "the burst stored", 60)
        deploy_gw.stop()
        for n in range(300, 310):  # a backlog queued while the gateway was down
            send(c, untimed(n))
        deploy_gw.start()
        wait_for(lambda: len(battery(deploy_gw.db)) >= 310, "the backlog stored", 60)
    finally:
        close(c)
    values = battery(deploy_gw.db)
    assert sorted(values) == [n / 100 for n in range(310)]  # each once, none collapsed
    assert metric(deploy_gw, "stationgw_readings_unkeyed_total") == 10  # since this start


def test_untimed_with_seq_are_stored_once_across_a_broker_restart(
    deploy_gw: Gateway, deploy_broker: DeployBroker
) -> None:
    """Redeliveries after a broker restart get new receive times; seq recognises them."""
    c = device(deploy_broker.port)
    try:
        for n in range(750):
            c.publish(TOPIC, untimed(n, seq=True), qos=1)
        wait_for(lambda: len(battery(deploy_gw.db)) > 100, "ingest under way")
        deploy_broker.stop(signal.SIGTERM)
        time.sleep(1.5)
        deploy_broker.start()
        for n in range(750, 1500):
            c.publish(TOPIC, untimed(n, seq=True), qos=1)
        wait_for(lambda: len(set(battery(deploy_gw.db))) == 1500, "all 1,500 stored", 90)
        time.sleep(2)  # redeliveries still on the way are stored or recognised
    finally:
        close(c)
    values = battery(deploy_gw.db)
    dups = metric(deploy_gw, "stationgw_readings_duplicate_total")
    print(
        f"1,500 untimed with seq across a broker restart: {len(values)} rows, {dups:.0f} redeliveries recognised"
    )
    assert len(values) == 1500  # none twice


def test_retained_telemetry_is_not_stored_again_at_each_start(
    deploy_gw: Gateway, deploy_broker: DeployBroker
) -> None:
    c = device(deploy_broker.port)
    try:
        send(c, untimed(7), retain=True)
    finally:
        close(c)
    wait_for(lambda: battery(deploy_gw.db) == [0.07], "the live delivery stored")
    for _ in range(2):  # each start resubscribes; the broker holds the retained copy
        deploy_gw.stop()
        deploy_gw.start()
    time.sleep(1)
    assert battery(deploy_gw.db) == [0.07]
