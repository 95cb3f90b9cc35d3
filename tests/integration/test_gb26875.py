"""A fire-alarm panel over TCP: confirms after commit, a fire alarm opens one hazard ticket."""

from __future__ import annotations

import asyncio
import os
import select
import time
from pathlib import Path

import pytest

from drivers.gb26875 import codec as gb26875
from drivers.link.framing import Stream
from firmware_stubs import alarm_panel as stub
from tests.conftest import Mosquitto
from tests.integration.field import PtyPair, config, gateway, rows, until

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
        stub.system_state(PANEL, 5, at + 4000),
        stub.system_state(PANEL, 6, at + 5000),
    ]
    script = stub.PanelScript(
        frames,
        {
            0: "garbage",
            1: "truncated",
            2: "bad_checksum",
            3: "resend",
            5: "disconnect",
            6: "silence",
        },
    )
    script.frames.insert(3, frames[2])  # the alarm again, as after a lost confirm

    async def main() -> list[int]:
        async with gateway(cfg) as running:
            assert running.field is not None
            ports = running.field.ports()
            return await stub.run_tcp(script, "127.0.0.1", ports[0])

    confirmed = asyncio.run(main())
    assert confirmed == [1, 2, 3, 3, 3, 4, 5, 6]  # the alarm went three times: one ticket
    tickets = rows(db, "SELECT kind, level, state, title, device, metric, rule FROM tickets")
    assert tickets == [("hazard", 4, "discovered", "火警 3号楼烟感", "fp-01", None, None)]
    # the reported hazard joined the ticket loop: it has the short code SMS replies quote
    assert rows(db, "SELECT code FROM tickets") == [("0001",)]
    events = rows(db, "SELECT kind, actor, at, note FROM ticket_events")
    assert events == [
        ("opened", "panel:fp-01", at + 2000, "system 1/1 component 21/306: normal, fire_alarm")
    ]
    reasons = [r for (r,) in rows(db, "SELECT reason FROM quarantine ORDER BY id")]
    assert any(r.startswith("fp-01: checksum mismatch") for r in reasons), reasons
    assert any("fp-01: no ## where the data length says the frame ends" in r for r in reasons), (
        reasons
    )
    assert any(
        r.startswith("fp-01: partial frame discarded: connection closed; 21 bytes") for r in reasons
    ), reasons
    assert rows(db, "SELECT crc_errors FROM device_health WHERE device='fp-01'") == [(1,)]
    assert rows(db, "SELECT online FROM devices WHERE id='fp-01'") == [(1,)]


def test_panel_on_a_serial_line_gets_its_confirm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    pair = PtyPair(tmp_path / "panel-gw", tmp_path / "panel-dev")
    toml = STATION.format(broker=mosquitto.port, panel=PANEL) + (
        f'\n[[serial_ports]]\nid = "panel"\npath = "{pair.a}"\nprotocol = "gb26875"\n'
    )
    cfg = config(tmp_path, toml)
    at = (int(time.time()) - 60) * 1000
    frame = stub.component(PANEL, 9, at, 7, 0b011, "1楼烟感")

    async def main() -> list[int]:
        pair.start()
        try:
            async with gateway(cfg) as running:
                driver = running.field.drivers.get("gb26875") if running.field else None
                assert driver is not None
                await until(
                    lambda: "panel" in driver.lines and driver.lines["panel"].is_open, "open"
                )
                fd = pair.open_b()
                os.write(fd, b"\xff\x00" + frame)
                replies: Stream[gb26875.Frame] = Stream(gb26875.take)
                got: list[object] = []
                while not got:
                    await until(lambda: select.select([fd], [], [], 0)[0], "a confirm")
                    got += replies.feed(os.read(fd, 4096))
                os.close(fd)
                return [f.serial for f in got if isinstance(f, gb26875.Frame) and f.command == 3]
        finally:
            pair.kill()

    assert asyncio.run(main()) == [9]
    db = cfg.database.path
    assert rows(db, "SELECT title, device FROM tickets") == [("火警 1楼烟感", "fp-01")]
    assert [r for (r,) in rows(db, "SELECT reason FROM quarantine")] == [
        "2 bytes before an @@ start; 2 bytes discarded at stream offset 0"
    ]
