"""HJ 212 analysers and Modbus TCP devices over real sockets, into a real gateway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from drivers.hj212 import codec
from firmware_stubs.hj212_analyser import Analyser, Upload, realtime
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
name = "化工园区"
village = "v"

[[devices]]
id = "gas-01"
name = "园区废气分析仪"
kind = "gas_analyser"
point = "p"
transport = {{ kind = "hj212", mn = "GAS0001", password = "123456", pollutants = {{ a21026 = "so2_mg", a21005 = "co_mg" }}, hourly = {{ a21026 = "so2_avg" }} }}
metrics.so2_mg = {{ unit = "mg/m3", min = 0, max = 10000 }}
metrics.co_mg = {{ unit = "mg/m3", min = 0, max = 10000 }}
metrics.so2_avg = {{ unit = "mg/m3", min = 0, max = 10000 }}

[[devices]]
id = "plc-01"
name = "泵站PLC"
kind = "plc"
point = "p"
transport = {{ kind = "modbus_tcp", host = "127.0.0.1", port = {plc}, unit = 1, poll_s = 0.1, timeout_s = 0.5, retries = 0, registers = [{{ metric = "level_m", address = 0, scale = 0.01 }}, {{ metric = "temp_c", address = 1, type = "int16", scale = 0.1 }}] }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
metrics.temp_c = {{ unit = "°C", min = -40, max = 80 }}

[[devices]]
id = "plc-dead"
name = "转换器后无应答的仪表"
kind = "plc"
point = "p"
transport = {{ kind = "modbus_tcp", host = "127.0.0.1", port = {plc}, unit = 7, poll_s = 0.1, timeout_s = 0.2, retries = 1, registers = [{{ metric = "level_m", address = 0 }}] }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[[devices]]
id = "plc-gone"
name = "断网的PLC"
kind = "plc"
point = "p"
transport = {{ kind = "modbus_tcp", host = "127.0.0.1", port = {gone}, unit = 1, poll_s = 0.1, timeout_s = 0.2, registers = [{{ metric = "level_m", address = 0 }}] }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[hj212]
listen = {{ host = "127.0.0.1", port = 0 }}
frame_timeout_s = 0.5

[rules]
path = "rules.toml"

[broker]
port = {broker}
client_id = "gw-hj212"

[database]
path = "station.db"

[http]
port = 0

[health]
check_s = 0.2
"""

RULES = """
[[rules]]
id = "co-high"
name = "一氧化碳超限"
kind = "threshold"
metric = "co_mg"
above = { blue = 1, red = 40 }
"""


def test_analyser_uploads_answered_flags_kept_bad_frames_quarantined(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    (tmp_path / "rules.toml").write_text(RULES)
    cfg = config(tmp_path, STATION.format(plc=free_port(), gone=free_port(), broker=mosquitto.port))
    db = cfg.database.path
    t0 = (int(time.time()) - 600) * 1000
    uploads = [
        Upload(t0, {"a21026": 12.5, "a21005": 0.4}),
        Upload(t0 + 30_000, {"a21026": 13.0, "a21005": 50.0}, {"a21005": "D"}),  # fault
        Upload(t0 + 60_000, {"a21026": 13.5, "a21005": 0.6}),
        Upload(t0 + 90_000, {"a21026": 14.0, "a21005": 2.0}),  # a real rise: blue
        Upload(t0 + 120_000, {"a21026": 14.5, "a21005": 0.5, "a99999": 1.0}),
    ]
    analyser = Analyser(
        "GAS0001",
        uploads,
        faults={0: "garbage", 1: "bad_crc", 2: "truncated", 3: "disconnect"},
    )

    async def main() -> int:
        async with gateway(cfg) as running:
            assert running.field is not None and running.field.drivers.get("hj212") is not None
            server = running.field.drivers["hj212"].server
            assert server is not None
            port = server.sockets[0].getsockname()[1]
            answered = await analyser.run("127.0.0.1", port, answer_wait_s=5)
            # an analyser nobody configured, and an hourly upload answered too
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(realtime("NOBODY", uploads[0]))
            seg = (
                "QN=20240101010000000;ST=22;CN=2061;PW=123456;MN=GAS0001;Flag=4;"
                "CP=&&DataTime=20240101000000;a21026-Avg=11.25,a21026-Flag=N&&"
            )
            w.write(codec.encode(seg))
            await w.drain()
            await until(lambda: series(db, "gas-01", "so2_avg"), "hourly average stored")
            await until(
                lambda: rows(db, "SELECT 1 FROM quarantine WHERE reason LIKE '%NOBODY%'"), "q"
            )
            w.close()
            return len(answered)

    assert asyncio.run(main()) == 5
    so2 = series(db, "gas-01", "so2_mg")
    assert so2 == [(t0 + 30_000 * k, 12.5 + 0.5 * k) for k in range(5)]
    flags = rows(
        db,
        "SELECT r.ts, r.flags FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.device = 'gas-01' AND s.metric = 'co_mg' ORDER BY r.ts",
    )
    assert flags == [(t0 + 30_000 * k, 8 if k == 1 else 0) for k in range(5)]
    # 2024-01-01 00:00 Beijing = 2023-12-31T16:00:00Z, the start of the hour
    assert series(db, "gas-01", "so2_avg") == [(1704038400000, 11.25)]
    # the flagged 50 mg/m3 (past red) opened nothing; the real 2.0 opened a blue ticket
    tickets = rows(db, "SELECT level, value FROM tickets WHERE rule = 'co-high'")
    assert tickets == [(1, 2.0)]
    reasons = [r for (r,) in rows(db, "SELECT reason FROM quarantine ORDER BY id")]
    assert any("CRC mismatch" in r and "gas-01" in r for r in reasons)
    assert any("bytes before ##" in r for r in reasons)
    assert any("partial frame" in r for r in reasons)
    assert rows(db, "SELECT crc_errors FROM device_health WHERE device = 'gas-01'")[0][0] >= 1


def test_modbus_tcp_polls_isolates_and_reconnects(tmp_path: Path, mosquitto: Mosquitto) -> None:
    (tmp_path / "rules.toml").write_text("")
    plc_port = free_port()
    cfg = config(tmp_path, STATION.format(plc=plc_port, gone=free_port(), broker=mosquitto.port))
    db = cfg.database.path

    def timeouts(device: str) -> int:
        got = rows(db, "SELECT timeouts FROM device_health WHERE device = ?", device)
        return int(got[0][0]) if got else 0

    async def main() -> int:
        slave = TcpSlave({1: [1234, (-56) & 0xFFFF]}, port=plc_port)
        await slave.start()
        try:
            async with gateway(cfg) as running:
                assert running.field is not None
                await until(lambda: len(series(db, "plc-01", "level_m")) >= 3, "3 polls stored")
                await until(lambda: timeouts("plc-dead") >= 2, "silent unit counted")
                await until(lambda: timeouts("plc-gone") >= 2, "unreachable endpoint counted")
                n = len(series(db, "plc-01", "level_m"))
                await until(lambda: len(series(db, "plc-01", "level_m")) > n + 3, "polls go on")
                await slave.stop()  # the PLC goes away, comes back with a new value
                slave.set(1, 0, 4321)
                await asyncio.sleep(0.3)
                await slave.start()
                await until(
                    lambda: any(v == 43.21 for _, v in series(db, "plc-01", "level_m")),
                    "new value after the connection was reopened",
                )
                ep = running.field.drivers["modbus_tcp"].endpoints[f"127.0.0.1:{plc_port}"]
                return ep.connects
        finally:
            await slave.stop()

    connects = asyncio.run(main())
    assert connects >= 2
    assert series(db, "plc-01", "level_m")[0][1] == 12.34
    assert series(db, "plc-01", "temp_c")[0][1] == pytest.approx(-5.6)  # -56 × 0.1
    assert series(db, "plc-dead", "level_m") == []
    assert rows(db, "SELECT online FROM devices WHERE id IN ('plc-dead', 'plc-gone')") == [
        (0,),
        (0,),
    ]
