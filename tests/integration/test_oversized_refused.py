"""Oversized messages are refused where the device learns of it (issue 21, item 4).

Mosquitto runs with deploy/mosquitto/stationgw.conf itself (only the port and the
persistence folder rewritten for the test), a gateway behind it:

- a body over the gateway's byte limit is refused by the broker to its sender: no PUBACK,
  the connection closed (MQTT 5: DISCONNECT reason 0x95 "Packet too large"); the
  gateway never sees it, and the device's next report is stored;
- the broker and the gateway agree on the limit: the deploy file's max_packet_size is
  the gateway's MAX_PAYLOAD, so nothing the broker accepts is dropped on its way to the
  gateway (which announces a larger Maximum Packet Size);
- a list of MAX_REPORTS realistic reports fits the byte limit and is stored whole; one
  report more is quarantined with the reason and counted.
"""

from __future__ import annotations

import json
import re
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from drivers.link.mqtt_client import MAX_PAYLOAD
from drivers.mqtt_json.codec import MAX_REPORTS
from tests.conftest import Gateway
from tests.integration.conftest import DEPLOY, DeployBroker
from tests.integration.faults import T0, metric, payload, seqs_stored, wait_for

pytestmark = pytest.mark.integration

TOPIC = "stations/test/rg-01/telemetry"


def deploy_limit() -> int:
    m = re.search(r"^max_packet_size (\d+)$", DEPLOY.read_text(), re.M)
    assert m, "deploy/mosquitto/stationgw.conf sets no max_packet_size"
    return int(m.group(1))


class Device:
    """A device's client that remembers what the broker did with its publishes."""

    def __init__(self, port: int, protocol: int, name: str) -> None:
        self.acked: set[int] = set()
        self.disconnects: list[int] = []
        self.gone = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=protocol)
        self.client.on_publish = lambda c, u, mid, rc, p: self.acked.add(mid)
        self.client.on_disconnect = self._disconnected
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _disconnected(
        self, c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: Properties | None
    ) -> None:
        self.disconnects.append(rc.value)
        self.gone.set()

    def publish(self, body: bytes) -> int:
        return self.client.publish(TOPIC, body, qos=1).mid

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_the_deploy_limit_is_the_gateways() -> None:
    assert deploy_limit() == MAX_PAYLOAD


@pytest.mark.parametrize(
    ("protocol", "reason"), [(mqtt.MQTTv5, 0x95), (mqtt.MQTTv311, None)], ids=["v5", "v3.1.1"]
)
def test_an_oversized_publish_is_refused_to_its_sender(
    deploy_gw: Gateway, deploy_broker: DeployBroker, protocol: int, reason: int | None
) -> None:
    device = Device(deploy_broker.port, protocol, f"big-{protocol}")
    try:
        big = b'{"values": {"rain_mm": 1}, "pad": "' + b"x" * MAX_PAYLOAD + b'"}'
        mid = device.publish(big)
        assert device.gone.wait(20), "the broker kept the connection of the oversized sender"
        time.sleep(0.5)  # a PUBACK, had one been sent, would have arrived before the close
        assert mid not in device.acked  # never acknowledged: the device knows it failed
        if reason is not None:  # MQTT 5 says why
            assert device.disconnects[0] == reason
        print(f"MQTT {protocol}: refused, disconnect reason {device.disconnects}")
    finally:
        device.close()
    # the device reconnects and goes on; the gateway is up, its next report is stored
    after = Device(deploy_broker.port, protocol, f"after-{protocol}")
    try:
        after.publish(payload(0))
        wait_for(lambda: seqs_stored(deploy_gw.db) == [0], "the next report stored")
    finally:
        after.close()
    assert (
        metric(deploy_gw, "stationgw_quarantined_total") == 0
    )  # nothing of it reached the gateway


def test_the_report_limit_is_reachable_and_one_more_is_quarantined(
    deploy_gw: Gateway, deploy_broker: DeployBroker
) -> None:
    reports = [
        {"ts": T0 + i * 1000, "seq": 10**6 + i, "values": {"rain_mm": 12.345, "battery_v": 3.91}}
        for i in range(MAX_REPORTS + 1)
    ]
    full = json.dumps(reports[:MAX_REPORTS]).encode()
    over = json.dumps([*reports[1:], {"values": {"rain_mm": 1.0}}]).encode()
    assert len(full) < MAX_PAYLOAD and len(over) < MAX_PAYLOAD  # both pass the broker
    device = Device(deploy_broker.port, mqtt.MQTTv5, "lists")
    try:
        device.publish(full)
        device.publish(over)
        wait_for(lambda: len(seqs_stored(deploy_gw.db)) == MAX_REPORTS, "the full list stored", 60)
        wait_for(
            lambda: metric(deploy_gw, "stationgw_quarantined_total") == 1, "the over-long counted"
        )
        assert len(device.acked) == 2 and not device.disconnects
    finally:
        device.close()
    [row] = deploy_gw.get("/api/quarantine")
    assert f"List should have at most {MAX_REPORTS} items" in row["reason"]
    print(f"{MAX_REPORTS} reports in {len(full):,} bytes stored; {MAX_REPORTS + 1} quarantined")
