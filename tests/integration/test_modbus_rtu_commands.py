"""A Modbus RTU write through the command queue over a socat pseudo-terminal pair to
pymodbus's own server (an independent implementation): queued by a technician, sent after
the slave's next poll with function 6 (request bytes written out by hand), answered."""

from __future__ import annotations

import asyncio
from contextlib import closing
from pathlib import Path

import pytest

from firmware_stubs.modbus_slave import SlaveBus
from tests.conftest import Mosquitto, api
from tests.integration.field import PtyPair, config, gateway, rows, until

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
name = "点"
village = "v"

[[devices]]
id = "gate-01"
name = "闸门控制器"
kind = "plc"
point = "p"
metrics.opening_cm = {{ unit = "cm", min = 0, max = 500 }}
transport = {{ kind = "modbus_rtu", port = "rs485", unit = 4, poll_s = 0.2, timeout_s = 0.5, retries = 0, registers = [{{ metric = "opening_cm", address = 1, scale = 0.1, writable = true, min = 0, max = 300 }}] }}

[[serial_ports]]
id = "rs485"
path = "{tty}"
protocol = "modbus_rtu"
baud = 19200

[broker]
port = {broker}
client_id = "gw-modbus-rtu-commands"

[database]
path = "station.db"

[http]
port = 0
"""


def test_a_write_goes_out_on_the_bus_after_a_poll(tmp_path: Path, mosquitto: Mosquitto) -> None:
    pair = PtyPair(tmp_path / "gw-tty", tmp_path / "slave-tty")
    cfg = config(tmp_path, STATION.format(tty=pair.a, broker=mosquitto.port))
    db = cfg.database.path

    async def main() -> tuple[int, list[bytes]]:
        bus: SlaveBus | None = None
        try:
            pair.start()
            bus = SlaveBus(str(pair.b), {4: [0, 105, 0]})  # opening 10.5 cm
            await bus.start()
            async with gateway(cfg) as running:
                url = f"http://127.0.0.1:{running.http_port}"

                def post() -> int:
                    with closing(api(url, db, "technician")) as http:
                        body = {
                            "name": "register.write",
                            "args": {"metric": "opening_cm", "value": "120.5"},
                        }
                        return http.post("/api/devices/gate-01/commands", json=body).status_code

                status = await asyncio.to_thread(post)
                await until(
                    lambda: rows(db, "SELECT state FROM device_commands") == [("answered",)],
                    "write answered",
                )
                return status, list(bus.received)
        finally:
            if bus is not None:
                await bus.stop()
            pair.kill()

    status, received = asyncio.run(main())
    assert status == 202
    # unit 4, function 6, register 1, 120.5 cm at 0.1 cm a step = 1205 = 0x04B5, then the
    # CRC (pymodbus's server checked it: it answered)
    writes = [f for f in received if f[1:2] == b"\x06"]
    assert [f[:-2] for f in writes] == [bytes.fromhex("04 06 0001 04B5")]
    assert rows(db, "SELECT answer FROM device_commands") == [
        ("已写入 opening_cm = 120.5 (寄存器 1, 功能码 6, 04B5)",)  # 1205 = 0x04B5
    ]
