"""A fire-alarm panel over TCP: confirms after commit, a fire alarm opens one hazard ticket."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from firmware_stubs import alarm_panel as stub
from tests.conftest import Mosquitto
from tests.integration.field import config, gateway, rows

pytestmark = pytest.mark.integration

PANEL = "0A0000000001"
STATION = """
[station]
id = "t"
name = "测试站"

[[villages]]
id = "v"
name = "村"

[[points]]
id = "p"
name = "点"
village = "v"

[[devices]]
id = "fp-01"
name = "镇政府大楼火灾报警控制器"
kind = "fire_panel"
point = "p"
transport = {{ kind = "gb26875", address = "{panel}" }}
metrics.heartbeat = {{ unit = "1", min = 0, max = 1 }}

[gb26875]
listen = {{ host = "127.0.0.1", port = 0 }}

[broker]
port = {broker}
client_id = "gw-panel"

[database]
path = "station.db"

[http]
port = 0
"""


def test_fire_alarm_opens_one_hazard_ticket_and_every_frame_is_confirmed(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port, panel=PANEL))
    db = cfg.database.path
    at = (int(time.time()) - 600) * 1000
    frames = [
        stub.system_state(PANEL, 1, at),
        stub.component(PANEL, 2, at + 1000, 305, 0b101, "2楼手报 故障"),
        stub.component(PANEL, 3, at + 2000, 306, 0b011, "3号楼烟感"),
        stub.system_state(PANEL, 4, at + 3000),
    ]
    script = stub.PanelScript(
        frames, {0: "garbage", 1: "truncated", 2: "bad_checksum", 3: "resend"}
    )
    script.frames.insert(3, frames[2])  # the alarm again, as after a lost confirm

    async def main() -> list[int]:
        async with gateway(cfg) as running:
            assert running.field is not None
            ports = running.field.ports()
            return await stub.run_tcp(script, "127.0.0.1", ports[0])

    confirmed = asyncio.run(main())
    assert confirmed == [1, 2, 3, 3, 3, 4]  # the alarm went three times: one ticket
    tickets = rows(db, "SELECT kind, level, state, title, device, metric, rule FROM tickets")
    assert tickets == [("hazard", 4, "discovered", "火警 3号楼烟感", "fp-01", None, None)]
    events = rows(db, "SELECT kind, actor, at, note FROM ticket_events")
    assert events == [
        ("opened", "panel:fp-01", at + 2000, "system 1/1 component 21/306: normal, fire_alarm")
    ]
    reasons = [r for (r,) in rows(db, "SELECT reason FROM quarantine ORDER BY id")]
    assert any(r.startswith("fp-01: checksum mismatch") for r in reasons), reasons
    assert any("fp-01: no ## where the data length says the frame ends" in r for r in reasons), (
        reasons
    )
    assert rows(db, "SELECT crc_errors FROM device_health WHERE device='fp-01'") == [(1,)]
    assert rows(db, "SELECT online FROM devices WHERE id='fp-01'") == [(1,)]
