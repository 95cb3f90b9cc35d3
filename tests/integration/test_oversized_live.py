"""1 MB MQTT bodies sent to a running gateway through real Mosquitto: refused before they
reach its memory (MQTT 5 Maximum Packet Size), its neighbours stored, RSS flat."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Gateway, Mosquitto
from tests.integration.faults import payload, seqs_stored, wait_for

pytestmark = pytest.mark.integration


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_1_mb_bodies_do_not_grow_the_gateway(gateway: Gateway, mosquitto: Mosquitto) -> None:
    gateway.start()
    assert gateway.proc is not None
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="big", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    topic = "stations/test/rg-01/telemetry"
    pub.publish(topic, payload(0), qos=1).wait_for_publish(5)
    wait_for(lambda: seqs_stored(gateway.db) == [0], "first report stored")
    before = rss_kib(gateway.proc.pid)
    big = b'{"values": {"rain_mm": 1}, "pad": "' + b"x" * (1 << 20) + b'"}'
    for seq in range(1, 41):  # 40 MB in 1 MB bodies, each between two good reports
        pub.publish(topic, big, qos=1).wait_for_publish(10)
        pub.publish(topic, payload(seq), qos=1).wait_for_publish(5)
    wait_for(lambda: seqs_stored(gateway.db) == list(range(41)), "every good report stored")
    growth = rss_kib(gateway.proc.pid) - before
    pub.loop_stop()
    pub.disconnect()
    print(f"gateway RSS grew {growth} KiB over 40 MB of oversized bodies")
    assert growth < 8 * 1024
