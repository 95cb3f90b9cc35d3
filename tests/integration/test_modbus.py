"""Modbus RTU master against pymodbus's own server as the slave, over a socat pty pair."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from pathlib import Path

import pytest
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusSerialServer

from tests.conftest import Mosquitto
from tests.integration.field import PtyPair, config, gateway, rows, series, until

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
id = "rg-485"
name = "雨量计"
kind = "rain_gauge"
point = "p"
metrics.rain_mm = {{ unit = "mm", min = 0, max = 1000 }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
metrics.temp_c = {{ unit = "°C", min = -40, max = 80 }}
metrics.count = {{ unit = "1", min = 0, max = 1e9 }}

[devices.transport]
kind = "modbus_rtu"
port = "rs485"
unit = 2
poll_s = 0.1
timeout_s = 0.5
registers = [
  {{ metric = "rain_mm", address = 0, type = "uint16", scale = 0.1 }},
  {{ metric = "level_m", address = 4, type = "float32", word_order = "little" }},
  {{ metric = "temp_c", address = 6, function = 4, type = "int16", scale = 0.1 }},
  {{ metric = "count", address = 8, type = "uint32" }},
]

[[devices]]
id = "gas-dead"
name = "气体探测器（无应答）"
kind = "gas_detector"
point = "p"
metrics.ppm = {{ unit = "ppm", min = 0, max = 10000 }}
transport = {{ kind = "modbus_rtu", port = "rs485", unit = 3, poll_s = 0.1, timeout_s = 0.2, retries = 1, registers = [{{ metric = "ppm", address = 0 }}] }}

[[serial_ports]]
id = "rs485"
path = "{tty}"
protocol = "modbus_rtu"
baud = 19200

[broker]
port = {broker}
client_id = "gw-modbus"

[database]
path = "station.db"

[http]
port = 0

[health]
check_s = 0.2
"""


def slave_context(rain_tenths: int) -> ModbusServerContext:
    f = struct.pack(">f", 2.5)
    hi, lo = int.from_bytes(f[:2], "big"), int.from_bytes(f[2:], "big")
    hr = [rain_tenths, 0, 0, 0, lo, hi, 0, 0, 1, 2]  # float32 little word order at 4
    ir = [0] * 6 + [(-123) & 0xFFFF] + [0] * 3
    dev = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, hr), ir=ModbusSequentialDataBlock(1, ir)
    )
    return ModbusServerContext(devices={2: dev}, single=False)


def dead_unit_3(sending: bool, data: bytes) -> bytes:
    """pymodbus answers an unknown unit with an exception; a dead slave says nothing."""
    return b"" if sending and data[:1] == b"\x03" else data


def test_polls_map_registers_dead_slave_counts_and_adapter_comes_back(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    pair = PtyPair(tmp_path / "gw-tty", tmp_path / "slave-tty")
    cfg = config(tmp_path, STATION.format(tty=pair.a, broker=mosquitto.port))
    db = cfg.database.path

    async def slave(rain: int) -> tuple[ModbusSerialServer, asyncio.Task[None]]:
        server = ModbusSerialServer(
            slave_context(rain), port=str(pair.b), baudrate=19200, trace_packet=dead_unit_3
        )
        return server, asyncio.create_task(server.serve_forever())

    async def main() -> int:
        pair.start()
        server, task = await slave(123)
        try:
            async with gateway(cfg) as running:
                assert running.field is not None
                bus = running.field.modbus["rs485"]
                await until(lambda: len(series(db, "rg-485", "rain_mm")) >= 3, "3 polls stored")
                await until(
                    lambda: rows(
                        db,
                        "SELECT timeouts FROM device_health WHERE device='gas-dead' AND timeouts >= 2",
                    ),
                    "dead slave counted",
                )
                # the USB adapter goes away and comes back with a new reading
                await server.shutdown()
                task.cancel()
                pair.kill()
                before = len(series(db, "rg-485", "rain_mm"))
                pair.start()
                server, task = await slave(456)
                await until(
                    lambda: any(v == 45.6 for _, v in series(db, "rg-485", "rain_mm")),
                    "new value after reconnect",
                )
                assert len(series(db, "rg-485", "rain_mm")) > before
                return bus.connects
        finally:
            with contextlib.suppress(Exception):
                await server.shutdown()
            task.cancel()
            pair.kill()

    connects = asyncio.run(main())
    assert connects >= 2
    assert series(db, "rg-485", "level_m")[0][1] == 2.5
    assert series(db, "rg-485", "temp_c")[0][1] == -12.3
    assert series(db, "rg-485", "count")[0][1] == 65538
    assert series(db, "rg-485", "rain_mm")[0][1] == 12.3
    assert series(db, "gas-dead", "ppm") == []
    assert rows(db, "SELECT online FROM devices WHERE id = 'gas-dead'") == [(0,)]
