"""Modbus TCP through serial-to-Ethernet gateways that answer with unit id 255 (or with
the RTU device's own address to a request for 255), over real TCP from the stub: the
readings are stored and each such answer is counted for its device as a field variant, in
the device's health (the Devices page) and in /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from drivers.modbus.tcp import unit_variant
from firmware_stubs.modbus_tcp_slave import TcpSlave, free_port
from tests.conftest import Mosquitto
from tests.integration.field import config, gateway, rows, series, until

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
id = "wl-05"
name = "转换器后的水位计"
kind = "level"
point = "p"
transport = {{ kind = "modbus_tcp", host = "127.0.0.1", port = {a}, unit = 5, poll_s = 0.2, timeout_s = 0.5, retries = 0, registers = [{{ metric = "level_m", address = 0, scale = 0.01 }}] }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[[devices]]
id = "wl-ff"
name = "按255寻址的水位计"
kind = "level"
point = "p"
transport = {{ kind = "modbus_tcp", host = "127.0.0.1", port = {b}, unit = 255, poll_s = 0.2, timeout_s = 0.5, retries = 0, registers = [{{ metric = "level_m", address = 0, scale = 0.01 }}] }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[broker]
port = {broker}
client_id = "gw-modbus-255"

[database]
path = "station.db"

[http]
port = 0
"""


def test_answers_from_unit_255_are_read_and_counted(tmp_path: Path, mosquitto: Mosquitto) -> None:
    a, b = free_port(), free_port()
    cfg = config(tmp_path, STATION.format(a=a, b=b, broker=mosquitto.port))
    db = cfg.database.path

    async def main() -> str:
        # converter A answers every unit behind it as 255; converter B forwards unit 255
        # to its RTU device, which answers with its own address 1
        conv_a = TcpSlave({5: [1234]}, port=a, answer_unit=255)
        conv_b = TcpSlave({255: [567]}, port=b, answer_unit=1)
        await conv_a.start()
        await conv_b.start()
        try:
            async with gateway(cfg) as running:
                for d in ("wl-05", "wl-ff"):
                    await until(lambda d=d: len(series(db, d, "level_m")) >= 2, f"{d} stored")
                await until(
                    lambda: (
                        rows(db, "SELECT count(*) FROM device_health WHERE variants >= 2") == [(2,)]
                    ),
                    "variants counted for both",
                )
                url = f"http://127.0.0.1:{running.http_port}/metrics"
                return await asyncio.to_thread(lambda: httpx.get(url).text)
        finally:
            await conv_a.stop()
            await conv_b.stop()

    text = asyncio.run(main())
    assert series(db, "wl-05", "level_m")[0][1] == 12.34
    assert series(db, "wl-ff", "level_m")[0][1] == 5.67
    assert rows(db, "SELECT device, last_variant FROM device_health ORDER BY device") == [
        ("wl-05", unit_variant(5, 255)),
        ("wl-ff", unit_variant(255, 1)),
    ]
    assert (
        'stationgw_frame_variants_total{device="wl-05",variant="unit 255 in the answer to unit 5"}'
        in text
    )
    assert rows(db, "SELECT timeouts FROM device_health WHERE device = 'wl-05'") == [(0,)]
