"""4G DTUs in transparent mode over real TCP sockets, into a real gateway: an SL651
station and Modbus slaves behind DTUs that drop and reconnect, two DTUs with one
registration, a dead DTU beside a live one, connections that never register."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from pathlib import Path

import httpx
import pytest

from firmware_stubs.dtu import DtuStub, RtuSlave, Sl651Behind
from firmware_stubs.sl651_station import frame_of, script
from gateway.app import Running
from tests.conftest import Mosquitto, api
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
name = "点"
village = "v"

[[dtu]]
id = "dtu-mb"
name = "下溪村雨量站DTU"
listen = {{ host = "127.0.0.1", port = 0 }}
registration = "DTU-MB-0001"
heartbeat = "HB"
protocol = "modbus_rtu"
idle_timeout_s = 3
register_timeout_s = 1
duplicate_window_s = 5

[[dtu]]
id = "dtu-dead"
name = "上坪河水位DTU"
listen = {{ host = "127.0.0.1", port = 0 }}
registration = "hex:FE01020304"
protocol = "modbus_rtu"
idle_timeout_s = 2
register_timeout_s = 1
duplicate_window_s = 1

[[dtu]]
id = "dtu-sl"
name = "水文站DTU"
listen = {{ host = "127.0.0.1", port = 0 }}
registration = "SL651-"
registration_match = "prefix"
heartbeat = "hex:00"
protocol = "sl651"
idle_timeout_s = 3
register_timeout_s = 1

[[devices]]
id = "rg-dtu"
name = "雨量计"
kind = "rain_gauge"
point = "p"
metrics.rain_mm = {{ unit = "mm", min = 0, max = 1000 }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
[devices.transport]
kind = "modbus_rtu"
dtu = "dtu-mb"
unit = 2
poll_s = 0.2
timeout_s = 0.5
retries = 0
registers = [
  {{ metric = "rain_mm", address = 0, scale = 0.1 }},
  {{ metric = "level_m", address = 4, type = "float32" }},
]

[[devices]]
id = "gas-absent"
name = "DTU后无应答的气体探测器"
kind = "gas_detector"
point = "p"
metrics.ppm = {{ unit = "ppm", min = 0, max = 10000 }}
transport = {{ kind = "modbus_rtu", dtu = "dtu-mb", unit = 3, poll_s = 0.2, timeout_s = 0.2, retries = 0, registers = [{{ metric = "ppm", address = 0 }}] }}

[[devices]]
id = "wl-dead"
name = "水位计"
kind = "water_level"
point = "p"
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
transport = {{ kind = "modbus_rtu", dtu = "dtu-dead", unit = 1, poll_s = 0.2, timeout_s = 0.3, retries = 0, registers = [{{ metric = "level_m", address = 0 }}] }}

[[devices]]
id = "hs-dtu"
name = "水文站"
kind = "hydrology"
point = "p"
transport = {{ kind = "sl651", address = "0012345601", elements = {{ PT = "rain_total_mm", Z = "level_m", VT = "supply_v" }} }}
metrics.rain_total_mm = {{ unit = "mm", min = 0, max = 10000 }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
metrics.supply_v = {{ unit = "V", min = 0, max = 30 }}

[broker]
port = {broker}
client_id = "gw-dtu"

[database]
path = "station.db"

[http]
port = 0

[health]
check_s = 0.2
"""


def bank(rain_tenths: int, level: float = 2.5) -> list[int]:
    f = struct.pack(">f", level)
    return [rain_tenths, 0, 0, 0, int.from_bytes(f[:2], "big"), int.from_bytes(f[2:], "big")]


def port_of(running: Running) -> int:
    assert running.field is not None and running.field.drivers.get("dtu") is not None
    return int(running.field.drivers["dtu"].server.servers[0].sockets[0].getsockname()[1])


def counts(running: Running) -> dict[tuple[str, str], int]:
    assert running.field is not None and running.field.drivers.get("dtu") is not None
    return running.field.drivers["dtu"].server.counts


async def closed_by_gateway(reader: asyncio.StreamReader) -> bool:
    """Read (and drop: polls for a dead instrument) until the gateway closes."""
    async with asyncio.timeout(10):
        while await reader.read(4096):
            continue
    return True


async def stopped(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 10)


def test_dtus_dropping_every_few_seconds_lose_no_reading(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    start = int(time.time() * 1000) - 3_600_000
    station = Sl651Behind(script("0012345601", 40, start, seed=3), interval_s=0.15)
    slave = RtuSlave({2: bank(123)})

    async def main() -> tuple[DtuStub, DtuStub, dict[tuple[str, str], int]]:
        async with gateway(cfg) as running:
            port = port_of(running)
            sl = DtuStub(
                "127.0.0.1",
                port,
                b"SL651-860000000000001",
                station,
                heartbeat=b"\x00",
                heartbeat_s=0.3,
                drop_every_s=1.5,
                reconnect_s=0.2,
                seed=1,
            )
            mb = DtuStub(
                "127.0.0.1",
                port,
                b"DTU-MB-0001",
                slave,
                heartbeat=b"HB",
                heartbeat_s=0.3,
                drop_every_s=1.5,
                reconnect_s=0.2,
                seed=2,
            )
            stop = asyncio.Event()
            tasks = [asyncio.create_task(s.run(stop)) for s in (sl, mb)]
            try:
                await until(lambda: len(station.confirmed) == 40, "all 40 reports confirmed", 60)
                await until(lambda: mb.connections >= 4, "the Modbus DTU reconnected 3 times")
                slave.holding[2][0] = 456  # the gauge counts on; a poll after a reconnect sees it
                await until(
                    lambda: any(v == 45.6 for _, v in series(db, "rg-dtu", "rain_mm")),
                    "polls resume on the new connection",
                )
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), 10)
            return sl, mb, dict(counts(running))

    sl, mb, seen = asyncio.run(main())
    assert sl.connections >= 4 and mb.connections >= 4  # it did drop, several times
    stored = dict(series(db, "hs-dtu", "rain_total_mm"))
    reports = station.script.reports
    # every report written whole while connected is stored, with its own value, once
    assert station.written == set(range(40))
    assert stored == {r.obs_ms: r.pt for r in reports}
    assert dict(series(db, "hs-dtu", "level_m")) == {r.obs_ms: r.z for r in reports}
    assert seen[("dtu-sl", "registered")] == sl.connections
    assert seen.get(("dtu-sl", "refused_duplicate"), 0) == 0
    # reports cut in half by a drop were counted as partial frames, never stored
    assert (
        rows(db, "SELECT count(*) FROM quarantine WHERE reason LIKE '%partial frame%'")[0][0] >= 1
    )
    values = {v for _, v in series(db, "rg-dtu", "rain_mm")}
    assert values == {12.3, 45.6}
    assert {v for _, v in series(db, "rg-dtu", "level_m")} == {2.5}


def test_two_dtus_with_one_registration(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    first = RtuSlave({2: bank(123)})
    clone = RtuSlave({2: bank(999)})

    async def main() -> tuple[DtuStub, dict[tuple[str, str], int], bytes]:
        async with gateway(cfg) as running:
            port = port_of(running)
            a = DtuStub("127.0.0.1", port, b"DTU-MB-0001", first, heartbeat=b"HB", heartbeat_s=0.3)
            b = DtuStub(
                "127.0.0.1",
                port,
                b"DTU-MB-0001",
                clone,
                heartbeat=b"HB",
                heartbeat_s=0.3,
                reconnect_s=0.3,
            )
            stop_a, stop_b = asyncio.Event(), asyncio.Event()
            ta = asyncio.create_task(a.run(stop_a))
            await until(lambda: series(db, "rg-dtu", "rain_mm"), "first DTU polled")
            tb = asyncio.create_task(b.run(stop_b))
            await until(lambda: b.refused >= 3, "the clone refused three times")
            n = len(series(db, "rg-dtu", "rain_mm"))
            await until(lambda: len(series(db, "rg-dtu", "rain_mm")) > n + 3, "first goes on")
            assert {v for _, v in series(db, "rg-dtu", "rain_mm")} == {12.3}
            # the first DTU goes away for good: the other one with its registration takes over
            await stopped(ta, stop_a)
            await until(
                lambda: any(v == 99.9 for _, v in series(db, "rg-dtu", "rain_mm")),
                "the remaining DTU is taken once the first has gone",
            )
            await stopped(tb, stop_b)
            metrics = await asyncio.to_thread(
                httpx.get, f"http://127.0.0.1:{running.http_port}/metrics"
            )
            return b, dict(counts(running)), metrics.content

    b, seen, metrics = asyncio.run(main())
    assert seen[("dtu-mb", "refused_duplicate")] == b.refused
    assert seen[("dtu-mb", "registered")] == 2
    assert (
        f'stationgw_dtu_events_total{{dtu="dtu-mb",event="refused_duplicate"}} {b.refused}.0'.encode()
        in metrics
    )


def test_dead_dtu_beside_a_live_one_and_connections_that_never_register(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    live = RtuSlave({2: bank(77)}, garbage_every=4)  # line noise before every 4th answer

    def timeouts(device: str) -> int:
        got = rows(db, "SELECT timeouts FROM device_health WHERE device = ?", device)
        return int(got[0][0]) if got else 0

    async def main() -> dict[tuple[str, str], int]:
        async with gateway(cfg) as running:
            port = port_of(running)
            stop = asyncio.Event()
            task = asyncio.create_task(
                DtuStub("127.0.0.1", port, b"DTU-MB-0001", live, heartbeat=b"HB").run(stop)
            )
            # a DTU that registers, then nothing: its instrument and link are dead
            _, dead_w = await asyncio.open_connection("127.0.0.1", port)
            dead_w.write(bytes.fromhex("FE01020304"))
            await dead_w.drain()
            await until(lambda: timeouts("wl-dead") >= 2, "dead DTU's gauge times out")
            n = len(series(db, "rg-dtu", "rain_mm"))
            await until(lambda: len(series(db, "rg-dtu", "rain_mm")) >= n + 5, "live one polled")
            # the half-open socket is replaced by the same registration from a new socket
            dead_r2, dead_w2 = await asyncio.open_connection("127.0.0.1", port)
            dead_w2.write(bytes.fromhex("FE01020304"))
            await dead_w2.drain()
            await until(lambda: counts(running).get(("dtu-dead", "taken_over")), "taken over")
            # idle: closed after its timeout, counted
            assert await closed_by_gateway(dead_r2)
            # never registers; registers as nobody; an SL651 DTU with garbage between frames
            silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
            stranger_r, stranger_w = await asyncio.open_connection("127.0.0.1", port)
            stranger_w.write(b"WHO-ARE-YOU")
            assert await closed_by_gateway(stranger_r)
            assert await closed_by_gateway(silent_r)
            _, sl_w = await asyncio.open_connection("127.0.0.1", port)
            s = script("0012345601", 2, int(time.time() * 1000) - 600_000)
            sl_w.write(b"SL651-X")
            await sl_w.drain()
            await asyncio.sleep(0.5)  # the DTU's pause after its registration packet
            sl_w.write(b"\x00" + b"+++garbage" + frame_of(s, 0) + b"\x00" + frame_of(s, 1))
            await sl_w.drain()
            await until(lambda: len(series(db, "hs-dtu", "rain_total_mm")) == 2, "SL651 via DTU")
            for w in (dead_w, dead_w2, silent_w, stranger_w, sl_w):
                w.close()
            await until(lambda: len(series(db, "rg-dtu", "rain_mm")) >= n + 10, "still polled")
            url = f"http://127.0.0.1:{running.http_port}"

            def page() -> tuple[int, list[dict[str, object]]]:
                anonymous = httpx.get(url + "/api/dtus").status_code
                with contextlib.closing(api(url, db, "viewer")) as viewer:
                    return anonymous, viewer.get("/api/dtus").json()

            anonymous, shown = await asyncio.to_thread(page)
            await stopped(task, stop)
            return dict(counts(running)), anonymous, shown

    seen, anonymous, shown = asyncio.run(main())
    # the Devices page's DTU table (GET /api/dtus): the station's names, link, counts
    assert anonymous == 401
    by_name = {d["name"]: d for d in shown}
    assert by_name["下溪村雨量站DTU"]["connected"] is True
    assert by_name["上坪河水位DTU"]["connected"] is False
    assert by_name["上坪河水位DTU"]["counts"] == {
        "closed_idle": seen[("dtu-dead", "closed_idle")],
        "registered": 2,
        "taken_over": 1,
    }
    refusals = next(d for d in shown if d["id"] is None)
    assert refusals["counts"]["refused_unknown"] == 1
    assert seen[("dtu-dead", "taken_over")] == 1
    assert seen[("dtu-dead", "closed_idle")] >= 1
    port_label = next(k for k, e in seen if e == "refused_unknown")
    assert seen[(port_label, "refused_unknown")] == 1
    assert seen[(port_label, "never_registered")] >= 1
    assert seen[("dtu-sl", "garbage")] == 1
    assert seen[("dtu-mb", "garbage")] >= 2  # the noise was counted, its answers still used
    noise = rows(db, "SELECT reason FROM quarantine WHERE source LIKE 'dtu dtu-mb%'")
    assert noise and "DTU dtu-mb: 3 bytes that are no Modbus answer" in noise[0][0]
    assert "'WHO-ARE-YOU' matches no configured DTU; refused" in caplog.text
    assert series(db, "wl-dead", "level_m") == []
    assert timeouts("gas-absent") >= 2 and series(db, "gas-absent", "ppm") == []
    assert {v for _, v in series(db, "rg-dtu", "rain_mm")} == {7.7}
    garbage = rows(db, "SELECT reason FROM quarantine WHERE source LIKE 'dtu dtu-sl%'")
    assert garbage and "10 bytes" in garbage[0][0]  # "+++garbage", the heartbeats dropped
