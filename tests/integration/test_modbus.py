"""Modbus RTU master against pymodbus's own server as the slave, over a socat pty pair."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from firmware_stubs.modbus_slave import Fault, SlaveBus
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
retries = 0
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


def registers(rain_tenths: int) -> tuple[list[int], list[int]]:
    f = struct.pack(">f", 2.5)
    hi, lo = int.from_bytes(f[:2], "big"), int.from_bytes(f[2:], "big")
    hr = [rain_tenths, 0, 0, 0, lo, hi, 0, 0, 1, 2]  # float32 little word order at 4
    ir = [0] * 6 + [(-123) & 0xFFFF] + [0] * 3
    return hr, ir


def test_polls_map_registers_dead_slave_counts_and_adapter_comes_back(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    pair = PtyPair(tmp_path / "gw-tty", tmp_path / "slave-tty")
    cfg = config(tmp_path, STATION.format(tty=pair.a, broker=mosquitto.port))
    db = cfg.database.path

    def health(device: str) -> tuple[int, int]:
        got = rows(db, "SELECT timeouts, malformed FROM device_health WHERE device = ?", device)
        return got[0] if got else (0, 0)

    async def slave(rain: int) -> SlaveBus:
        hr, ir = registers(rain)
        bus = SlaveBus(str(pair.b), {2: hr}, {2: ir})  # unit 3 is configured but dead
        await bus.start()
        return bus

    async def main() -> int:
        bus: SlaveBus | None = None
        try:
            pair.start()
            bus = await slave(123)
            async with gateway(cfg) as running:
                assert running.field is not None
                master = running.field.drivers["modbus_rtu"].buses["rs485"]
                await until(lambda: len(series(db, "rg-485", "rain_mm")) >= 3, "3 polls stored")
                await until(lambda: health("gas-dead")[0] >= 2, "dead slave counted")
                # a noisy line: corrupted answers are counted, then polls go on
                for kind in ("garbage", "bad_crc", "truncated", "silence"):
                    bus.faults[2] = Fault(kind, 1)
                    await until(lambda: bus.faults[2].remaining == 0, f"{kind} injected")
                n = len(series(db, "rg-485", "rain_mm"))
                await until(lambda: len(series(db, "rg-485", "rain_mm")) > n + 2, "polls resume")
                await until(lambda: sum(health("rg-485")) >= 4, "each bad answer counted")
                # the USB adapter goes away and comes back with a new reading
                await bus.stop()
                pair.kill()
                before = len(series(db, "rg-485", "rain_mm"))
                pair.start()
                bus = await slave(456)
                await until(
                    lambda: any(v == 45.6 for _, v in series(db, "rg-485", "rain_mm")),
                    "new value after reconnect",
                )
                assert len(series(db, "rg-485", "rain_mm")) > before
                return master.connects
        finally:
            if bus is not None:
                await bus.stop()
            pair.kill()

    connects = asyncio.run(main())
    assert connects >= 2
    assert series(db, "rg-485", "level_m")[0][1] == 2.5
    assert series(db, "rg-485", "temp_c")[0][1] == -12.3
    assert series(db, "rg-485", "count")[0][1] == 65538
    assert series(db, "rg-485", "rain_mm")[0][1] == 12.3
    assert series(db, "gas-dead", "ppm") == []
    assert rows(db, "SELECT online FROM devices WHERE id = 'gas-dead'") == [(0,)]
