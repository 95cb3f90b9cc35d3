"""Modbus writes through the command queue, over real TCP to the stub: a technician's
`register.write` to registers the map marks writable goes out (function 6 for a 16-bit
entry, 16 for a 32-bit one) after the device's next poll and is answered; an unknown or
read-only register, a value out of range or between steps is a 4xx / exit 2 and nothing
is queued or sent. Request bytes written out by hand from the Modbus Application Protocol
(V1.1b3, 6.6 and 6.12), not from our encoder."""

from __future__ import annotations

import asyncio
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from firmware_stubs.modbus_tcp_slave import TcpSlave, free_port
from gateway.cli.main import main
from tests.conftest import Mosquitto, api
from tests.integration.field import config, gateway, rows, until

pytestmark = pytest.mark.integration

STATION = """
[station]
id = "t"
name = "测试站"

[[villages]]
id = "v"
name = "村"

[[points]]
id = "p"
name = "泵站"
village = "v"

[[devices]]
id = "pump-01"
name = "上坪泵站PLC"
kind = "plc"
point = "p"
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
metrics.setpoint_m = {{ unit = "m", min = 0, max = 100 }}
metrics.total_l = {{ unit = "L", min = 0, max = 4e9 }}
transport = {{ kind = "modbus_tcp", host = "127.0.0.1", port = {plc}, unit = 1, poll_s = 0.3, timeout_s = 0.5, retries = 0, registers = [
  {{ metric = "level_m", address = 0, scale = 0.01 }},
  {{ metric = "setpoint_m", address = 2, scale = 0.01, writable = true, min = 0, max = 50 }},
  {{ metric = "total_l", address = 4, type = "uint32", writable = true }},
] }}

[broker]
port = {broker}
client_id = "gw-modbus-commands"

[database]
path = "station.db"

[http]
port = 0
"""


def post(url: str, db: Path, role: str, body: object) -> httpx.Response:
    with closing(api(url, db, role)) as http:
        return http.post("/api/devices/pump-01/commands", json=body)


def write(**args: str) -> dict[str, object]:
    return {"name": "register.write", "args": args}


def test_writes_to_writable_registers_go_out_after_a_poll_and_are_answered(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    plc = free_port()
    cfg = config(tmp_path, STATION.format(plc=plc, broker=mosquitto.port))
    db = cfg.database.path
    slave = TcpSlave({1: [1000, 0, 0, 0, 0, 0]}, port=plc)

    async def main_() -> tuple[list[httpx.Response], list[bytes], list[httpx.Response]]:
        await slave.start()
        try:
            async with gateway(cfg) as running:
                url = f"http://127.0.0.1:{running.http_port}"
                bad = [
                    await asyncio.to_thread(post, url, db, role, body)
                    for role, body in [
                        ("technician", write(metric="nope", value="1")),
                        ("technician", write(metric="level_m", value="1")),
                        ("technician", write(metric="setpoint_m", value="60")),
                        ("technician", write(metric="setpoint_m", value="12.345")),
                        ("technician", write(metric="total_l", value="-1")),
                        ("technician", write(metric="setpoint_m")),
                        ("technician", {"name": "reboot"}),
                        ("viewer", write(metric="setpoint_m", value="1")),
                    ]
                ]
                await asyncio.sleep(1.0)  # polls went on; nothing was queued or written
                sent_before = list(slave.writes)
                good = [
                    await asyncio.to_thread(post, url, db, "technician", body)
                    for body in (
                        write(metric="setpoint_m", value="12.34"),
                        write(address="4", value="70000"),
                    )
                ]
                await until(
                    lambda: (
                        rows(db, "SELECT count(*) FROM device_commands WHERE state = 'answered'")
                        == [(2,)]
                    ),
                    "both writes answered",
                )
                return bad, sent_before, good
        finally:
            await slave.stop()

    bad, sent_before, good = asyncio.run(main_())
    assert [r.status_code for r in bad] == [400, 400, 400, 400, 400, 400, 400, 403]
    details = [r.json()["detail"] for r in bad[:7]]
    assert details[0] == (
        "上坪泵站PLC: register.write: metric 'nope' is not in the device's register map "
        "(writable: setpoint_m (2), total_l (4))"
    )
    assert details[1] == (
        "上坪泵站PLC: register.write: level_m (register 0) is not writable "
        "(writable = true in its register map entry)"
    )
    assert details[2] == "上坪泵站PLC: register.write: setpoint_m = 60 is above its max 50"
    assert "12.345 is not a whole number of steps of 0.01" in details[3]
    assert details[4] == "上坪泵站PLC: register.write: -1 gives raw -1, outside uint32 0…4294967295"
    assert details[5] == "上坪泵站PLC: register.write: value=… is missing"
    assert "unknown Modbus command 'reboot'; one of register.write" in details[6]
    assert sent_before == []
    assert [r.status_code for r in good] == [202, 202]
    # 12.34 m at 0.01 m a step = 1234 = 0x04D2: function 6, register 2 (6.6)
    # 70000 = 0x0001_1170, high word first: function 16, register 4, 2 registers, 4 bytes (6.12)
    assert slave.writes == [
        bytes.fromhex("06 0002 04D2"),
        bytes.fromhex("10 0004 0002 04 0001 1170"),
    ]
    assert slave.holding[1][2] == 0x04D2 and slave.holding[1][4:6] == [0x0001, 0x1170]
    answers = rows(db, "SELECT name, state, attempts, answer FROM device_commands ORDER BY id")
    assert answers == [
        ("register.write", "answered", 1, "已写入 setpoint_m = 12.34 (寄存器 2, 功能码 6, 04D2)"),
        (
            "register.write",
            "answered",
            1,
            "已写入 total_l = 70000 (寄存器 4, 功能码 16, 0001 1170)",
        ),
    ]


def test_cli_refuses_an_unknown_register_before_sending_anything(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    config(tmp_path, STATION.format(plc=free_port(), broker=mosquitto.port))
    base = ["command", "-c", str(tmp_path / "station.toml"), "--user", "nobody"]
    assert main([*base, "pump-01", "register.write", "address=9", "value=1"]) == 2
    assert "holding register 9 is not in the device's register map" in capsys.readouterr().err
    assert main([*base, "pump-01", "register.write", "metric=setpoint_m", "value=-0.5"]) == 2
    assert "setpoint_m = -0.5 is below its min 0" in capsys.readouterr().err
