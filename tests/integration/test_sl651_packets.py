"""SL651 multi-packet messages and 5-minute arrays over real TCP, into a real gateway.

Packets are confirmed as SL 651-2014 figure 2(a) and table 23 say (NAK for the missing
packet, EOT once whole); an array's observation time is that of its first value unless
the station is set to `array_time = "end"`; a message left incomplete is quarantined.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from drivers.link.framing import Stream
from drivers.sl651 import codec as sl651
from tests.conftest import Mosquitto, api
from tests.integration.field import config, gateway, rows, series, until

pytestmark = pytest.mark.integration
BJ = ZoneInfo("Asia/Shanghai")

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
id = "hs-std"
name = "上坪河水位站"
kind = "hydrology"
point = "p"
transport = {{ kind = "sl651", address = "0012345611", elements = {{ Z = "level_m" }} }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[[devices]]
id = "hs-end"
name = "下坪河水位站"
kind = "hydrology"
point = "p"
transport = {{ kind = "sl651", address = "0012345612", array_time = "end", elements = {{ Z = "level_m" }} }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[sl651]
listen = {{ host = "127.0.0.1", port = 0 }}

[broker]
port = {broker}
client_id = "gw-sl651-packets"

[database]
path = "station.db"

[http]
port = 0
"""


def bcd(t: datetime, n: int) -> str:
    return "".join(
        f"{p:02d}" for p in (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)[:n]
    )


def hourly_body(station: str, obs: datetime, sent: datetime, start_cm: int) -> bytes:
    """34 hourly report: serial · send time · F1F1 · type 48 · F0F0 obs · F5 C0 + 12 levels."""
    levels = "".join(f"{start_cm + k:04X}" for k in range(12))
    return bytes.fromhex(
        f"0007 {bcd(sent, 6)} F1F1 {station} 48 F0F0 {bcd(obs, 5)} F5C0 {levels} 381212 00"
    )


def packets(station: str, body: bytes, cuts: list[int]) -> list[bytes]:
    parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    n = len(parts)
    return [
        sl651.encode(
            centre=1,
            station=station,
            password="1234",
            function=0x34,
            body=p,
            packet=(n, k + 1),
            end=sl651.ETB if k < n - 1 else sl651.ETX,
        )
        for k, p in enumerate(parts)
    ]


async def read_frames(reader: asyncio.StreamReader, n: int) -> list[sl651.Frame]:
    s: Stream[sl651.Frame] = Stream(sl651.take)
    out: list[sl651.Frame] = []
    while len(out) < n:
        data = await asyncio.wait_for(reader.read(256), 20)
        assert data, "the gateway closed the connection"
        out.extend(f for f in s.feed(data) if isinstance(f, sl651.Frame))
    return out


async def running_health_flushed(http_port: int, db: Path) -> None:
    """The per-station variant count reaches device_health (flushed every check_s) and
    /api/devices: hs-end 1 (its F1 28 frame), hs-std 0."""
    await until(
        lambda: rows(db, "SELECT variants FROM device_health WHERE device = 'hs-end'") == [(1,)],
        "variant counted for hs-end",
    )

    def get() -> dict[str, dict[str, object]]:
        with closing(api(f"http://127.0.0.1:{http_port}", db, "viewer")) as c:
            return {d["id"]: d["health"] for d in c.get("/api/devices").json()}

    health = await asyncio.to_thread(get)
    assert (health["hs-end"]["variants"], health["hs-end"]["last_variant"]) == (
        1,
        "F1 28 in place of F1 F1 (station address identifier)",
    )
    assert health["hs-std"]["variants"] == 0


def test_packets_confirmed_gaps_asked_for_arrays_timed_per_station(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    hour = datetime.fromtimestamp(time.time() // 3600 * 3600 - 3 * 3600, BJ)
    sent = datetime.now(BJ)  # the stations' clocks are right (no clock keeping here)
    std = packets("0012345611", hourly_body("0012345611", hour, sent, 1000), [20, 40])
    end = packets("0012345612", hourly_body("0012345612", hour, sent, 2000), [30])
    lost = packets("0012345611", hourly_body("0012345611", hour, sent, 3000), [30])

    async def main() -> tuple[list[sl651.Frame], list[sl651.Frame]]:
        async with gateway(cfg) as running:
            assert running.field is not None
            (port,) = running.field.ports()
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(std[0] + std[2])  # packet 2 lost on the way
            await w.drain()
            nak = await read_frames(r, 1)
            w.write(std[1])  # resent
            await w.drain()
            eot = await read_frames(r, 1)
            w.write(end[0] + end[1])
            await w.drain()
            eot += await read_frames(r, 1)
            w.write(lost[0])  # then the connection drops inside a message
            await w.drain()
            w.close()
            await until(
                lambda: rows(
                    cfg.database.path, "SELECT 1 FROM quarantine WHERE reason LIKE '%incomplete%'"
                ),
                "incomplete message quarantined",
            )
            await until(lambda: len(series(cfg.database.path, "hs-end", "level_m")) == 12, "stored")
            # a variant (F1 28 for F1 F1) is stored and counted for its station in /metrics
            w2 = (await asyncio.open_connection("127.0.0.1", port))[1]
            obs = bcd(hour + timedelta(hours=1), 5)  # the next hour, also across midnight
            w2.write(
                sl651.encode(
                    centre=1,
                    station="0012345612",
                    password="1234",
                    function=0x32,
                    body=bytes.fromhex(
                        f"0009 {bcd(sent, 6)} F128 0012345612 48 F0F0 {obs} 3923 00012340"
                    ),
                )
            )
            await w2.drain()
            await until(lambda: len(series(cfg.database.path, "hs-end", "level_m")) == 13, "13")
            w2.close()
            text = await asyncio.to_thread(
                lambda: httpx.get(f"http://127.0.0.1:{running.http_port}/metrics").text
            )
            assert (
                'stationgw_frame_variants_total{device="hs-end",variant="F1 28 in place of F1 F1"} 1.0'
                in text
            ), text
            # and per station where the technician looks (the Devices page's data)
            await running_health_flushed(running.http_port, cfg.database.path)
            return nak, eot

    nak, eot = asyncio.run(main())
    (n,) = nak
    assert (n.header.downlink, n.header.end, n.header.packet) == (True, sl651.NAK, (3, 2))
    assert n.serial == 7
    assert [(f.header.end, f.header.packet, f.header.station) for f in eot] == [
        (sl651.EOT, (3, 3), "0012345611"),
        (sl651.EOT, (2, 2), "0012345612"),
    ]
    t0 = int(hour.timestamp()) * 1000
    # the standard: F0F0 hh:00 is the first value's time -> hh:00 … hh:55
    assert series(cfg.database.path, "hs-std", "level_m") == [
        (t0 + k * 300_000, (1000 + k) / 100) for k in range(12)
    ]
    # array_time = "end": F0F0 hh:00 is the last value's time -> hh-1:05 … hh:00
    assert series(cfg.database.path, "hs-end", "level_m")[:12] == [
        (t0 - 3_300_000 + k * 300_000, (2000 + k) / 100) for k in range(12)
    ]
    (reason,) = rows(
        cfg.database.path, "SELECT reason FROM quarantine WHERE reason LIKE '%incomplete%'"
    )[0]
    assert reason == "hs-std: incomplete message: packets 2 of 2 never arrived (function 34)"
