"""kill -9 between two escalation levels: after the restart the overdue step fires once,
nobody is called twice, and the calls of the first life are all still there; an
acknowledgement sent over MQTT while the gateway is down is taken after the restart."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Gateway, Mosquitto
from tests.integration.test_end_to_end import db_rows, publish_raw, wait_for

pytestmark = pytest.mark.integration

PEOPLE = """
[[people]]
id = "li"
name = "李网格"
roles = ["grid_member"]
grid = "point:p1"

[[people]]
id = "cun"
name = "张村长"
roles = ["leader"]
grid = "village:v1"

[[people]]
id = "wang"
name = "王镇长"
roles = ["leader"]
grid = "township"

[[people]]
id = "zhao"
name = "赵值班"
roles = ["duty_officer"]

[[duty]]
officer = "zhao"
start = "00:00"
end = "00:00"

[tickets]
ack_deadline = { yellow = "4s" }
"""


def test_restart_between_levels(gateway: Gateway, mosquitto: Mosquitto) -> None:
    gateway.config.write_text(gateway.config.read_text() + PEOPLE)
    gateway.start()
    publish_raw(
        mosquitto.port,
        "stations/test/rg-01/telemetry",
        [json.dumps({"ts": int(time.time() * 1000), "values": {"rain_mm": 6.0}}).encode()],
    )
    calls = "SELECT person, why, step FROM calls ORDER BY id"
    wait_for(lambda: db_rows(gateway.db, calls) == [("li", "issued", 0)], what="the first call")
    assert gateway.kill() == -9
    (due,) = db_rows(gateway.db, "SELECT due_at FROM warning_state")[0]
    assert db_rows(gateway.db, calls) == [("li", "issued", 0)]  # nothing escalated before the kill
    while time.time() * 1000 <= due + 500:  # down while the deadline passes
        time.sleep(0.2)

    gateway.start()
    wait_for(lambda: len(db_rows(gateway.db, calls)) >= 3, what="the escalation after restart")
    rows = db_rows(gateway.db, calls)
    assert rows[:3] == [("li", "issued", 0), ("cun", "escalated", 1), ("zhao", "duty", 1)]
    assert [r for r in rows if r[2] <= 1] == rows[:3]  # each level called once
    outcomes = db_rows(gateway.db, "SELECT person, outcome FROM calls WHERE step = 0")
    assert outcomes == [("li", "escalated")]

    # an acknowledgement sent from a handheld while the gateway is down waits at the broker
    assert gateway.kill() == -9
    (code,) = db_rows(gateway.db, "SELECT code FROM tickets WHERE kind = 'warning'")[0]
    publish_raw(
        mosquitto.port, "stations/test/acks", [json.dumps({"code": code, "by": "cun"}).encode()]
    )
    gateway.start()
    acked = "SELECT acknowledged_by FROM tickets WHERE kind = 'warning'"
    wait_for(lambda: db_rows(gateway.db, acked) == [("张村长",)], what="the queued acknowledgement")
    assert ("cun", "acknowledged") in db_rows(gateway.db, "SELECT person, outcome FROM calls")
