"""SL651 stations over real TCP and a socat pseudo-terminal pair, into a real gateway."""

from __future__ import annotations

import asyncio
import os
import select
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from drivers.link.config import Listen
from drivers.link.framing import Stream
from drivers.sl651 import codec as sl651
from drivers.sl651.config import Sl651Section
from drivers.sl651.server import Sl651Driver
from firmware_stubs import sl651_station as stub
from gateway.config.station import Config
from gateway.core.batch import Batch
from gateway.ingest.commit import Outcome
from gateway.ingest.health import HealthRecorder
from gateway.ingest.host import GatewayHost
from gateway.ingest.registry import Registry
from gateway.metrics import Metrics
from tests.conftest import Mosquitto, api
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
id = "hs-a"
name = "水文站A"
kind = "hydrology"
point = "p"
interval_s = 300
transport = {{ kind = "sl651", address = "0012345601", elements = {{ PT = "rain_total_mm", Z = "level_m", VT = "supply_v" }} }}
metrics.rain_total_mm = {{ unit = "mm", min = 0, max = 10000 }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}
metrics.supply_v = {{ unit = "V", min = 0, max = 30 }}

[[devices]]
id = "hs-b"
name = "水文站B"
kind = "hydrology"
point = "p"
transport = {{ kind = "sl651", address = "0012345602", elements = {{ PT = "rain_total_mm" }} }}
metrics.rain_total_mm = {{ unit = "mm", min = 0, max = 10000 }}

[[devices]]
id = "hs-radio"
name = "电台水文站"
kind = "hydrology"
point = "p"
transport = {{ kind = "sl651", address = "0012345603", elements = {{ PT = "rain_total_mm", Z = "level_m" }} }}
metrics.rain_total_mm = {{ unit = "mm", min = 0, max = 10000 }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[sl651]
listen = {{ host = "127.0.0.1", port = 0 }}
frame_timeout_s = 1
clock_limit_s = 0  # the stubs' reports are an hour old: no clock keeping here

[[serial_ports]]
id = "radio"
path = "{radio}"
protocol = "sl651"
baud = 9600

[broker]
port = {broker}
client_id = "gw-sl651"

[database]
path = "station.db"

[http]
port = 0

[health]
check_s = 0.2
"""


def cfg_for(tmp_path: Path, broker: int) -> Config:
    return config(tmp_path, STATION.format(broker=broker, radio=tmp_path / "gw-tty"))


def test_tcp_stations_with_faults_every_confirmed_report_stored_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = cfg_for(tmp_path, mosquitto.port)
    now = int(time.time() * 1000) - 3_600_000
    a = stub.script(
        "0012345601",
        12,
        now,
        seed=1,
        faults={2: "garbage", 5: "bad_crc", 7: "truncated", 9: "disconnect"},
    )
    b = stub.script("0012345602", 12, now, seed=2, faults={3: "silence"})

    async def main() -> tuple[list[int], list[int], int, dict[str, object]]:
        async with gateway(cfg) as running:
            assert running.field is not None
            (port,) = running.field.ports()
            got_a, got_b = await asyncio.gather(
                stub.run_tcp(a, "127.0.0.1", port), stub.run_tcp(b, "127.0.0.1", port)
            )
            # a report from a station nobody configured: quarantined, never confirmed
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(stub.timed_report("0099999999", 1, now, now, 1.0, 1.0, 12.0))
            await w.drain()
            await until(
                lambda: rows(
                    cfg.database.path, "SELECT 1 FROM quarantine WHERE reason LIKE '%0099999999%'"
                ),
                "unknown station quarantined",
            )
            w.close()
            await until(
                lambda: (
                    rows(
                        cfg.database.path,
                        "SELECT crc_errors FROM device_health WHERE device='hs-a'",
                    )
                    == [(1,)]
                ),
                "health written",
            )
            url = f"http://127.0.0.1:{running.http_port}"

            def get_devices() -> Any:
                with closing(api(url, cfg.database.path, "viewer")) as http:
                    return http.get("/api/devices").json()

            devices = await asyncio.to_thread(get_devices)
            return (
                got_a,
                got_b,
                running.field.drivers.get("sl651").replies
                if running.field.drivers.get("sl651")
                else 0,
                {d["id"]: d for d in devices},
            )

    got_a, got_b, replies, devices = asyncio.run(main())
    assert got_a == list(range(12)) and got_b == list(range(12))
    assert replies >= 24
    db = cfg.database.path
    assert series(db, "hs-a", "rain_total_mm") == [(r.obs_ms, r.pt) for r in a.reports]
    assert series(db, "hs-a", "level_m") == [(r.obs_ms, r.z) for r in a.reports]
    assert series(db, "hs-b", "rain_total_mm") == [(r.obs_ms, r.pt) for r in b.reports]
    reasons = [r for (r,) in rows(db, "SELECT reason FROM quarantine ORDER BY id")]
    assert any(r.startswith("hs-a: station 0012345601: CRC mismatch") for r in reasons), reasons
    assert any("partial frame discarded: connection closed" in r for r in reasons), reasons
    assert any("bytes before a 7E 7E start" in r for r in reasons), reasons
    assert any("SL651 station 0099999999 is not configured" in r for r in reasons), reasons
    hs_a = devices["hs-a"]
    assert hs_a["transport"] == "sl651" and hs_a["online"] is True  # type: ignore[index]
    health = hs_a["health"]  # type: ignore[index]
    assert health["errors"]["crc"] == 1 and health["errors"]["malformed"] >= 1
    assert health["supply_v"] == a.reports[-1].vt
    assert hs_a["interval_s"] == 300  # type: ignore[index]


def test_serial_line_killed_mid_frame_recovers_and_loses_nothing_after(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = cfg_for(tmp_path, mosquitto.port)
    pair = PtyPair(tmp_path / "gw-tty", tmp_path / "dev-tty")
    now = int(time.time() * 1000) - 3_600_000
    s = stub.script("0012345603", 10, now, seed=3)
    frames = [stub.frame_of(s, k) for k in range(10)]
    db = cfg.database.path

    async def main() -> int:
        pair.start()
        try:
            async with gateway(cfg) as running:
                driver = running.field.drivers.get("sl651") if running.field else None
                assert driver is not None
                await until(
                    lambda: "radio" in driver.lines and driver.lines["radio"].is_open, "line open"
                )
                fd = pair.open_b()
                for f in frames[:4]:
                    os.write(fd, f)
                os.write(fd, frames[4][:17])  # then the line dies mid-frame
                await until(lambda: len(series(db, "hs-radio", "rain_total_mm")) == 4, "4 stored")
                # the confirmations came back over the radio line, one per report
                replies: Stream[sl651.Frame] = Stream(sl651.take)
                got: list[object] = []
                while len(got) < 4:
                    await until(lambda: select.select([fd], [], [], 0)[0], "a reply on the line")
                    got += replies.feed(os.read(fd, 4096))
                assert [f.serial for f in got if isinstance(f, sl651.Frame)] == [1, 2, 3, 4]
                stream = driver.streams["sl651 serial radio"]
                await until(lambda: stream.pending == 17, "the partial frame read")
                os.close(fd)
                pair.kill()
                await until(
                    lambda: rows(
                        db, "SELECT 1 FROM quarantine WHERE reason LIKE '%serial line lost%'"
                    ),
                    "partial frame counted",
                )
                pair.start()
                line = driver.lines["radio"]
                opened = line.opened
                await until(lambda: line.opened > opened, "line reopened")
                fd = pair.open_b()
                for f in frames[4:]:
                    os.write(fd, f)
                await until(lambda: len(series(db, "hs-radio", "rain_total_mm")) == 10, "10 stored")
                os.close(fd)
                return line.opened
        finally:
            pair.kill()

    opened = asyncio.run(main())
    assert opened == 2
    assert series(db, "hs-radio", "rain_total_mm") == [(r.obs_ms, r.pt) for r in s.reports]
    (partial,) = rows(db, "SELECT reason, length(payload) FROM quarantine")
    assert partial == (
        "hs-radio: partial frame discarded: serial line lost; 17 bytes discarded at stream "
        f"offset {sum(map(len, frames[:4]))}",
        17,
    )
    assert rows(db, "SELECT malformed FROM device_health WHERE device = 'hs-radio'") == [(1,)]


def test_no_confirmation_for_a_batch_that_was_not_committed(tmp_path: Path) -> None:
    """The reply goes out only after submit returns: a failing commit sends none."""
    cfg = cfg_for(tmp_path, 1883)
    commits: list[Batch] = []

    async def refuse(batch: Batch) -> Outcome:
        commits.append(batch)
        raise RuntimeError("store refused")

    async def main() -> bytes:
        ctx = GatewayHost(cfg, Registry(cfg), refuse, HealthRecorder(), Metrics(), lambda: 0)
        driver = Sl651Driver(ctx, Sl651Section(listen=Listen(host="127.0.0.1", port=0)))
        server = await driver.serve()
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        s = stub.script("0012345601", 1, 1782858600000)
        writer.write(stub.frame_of(s, 0))
        await writer.drain()
        data = await reader.read()  # the connection ends without a reply
        writer.close()
        server.close()
        return data

    assert asyncio.run(main()) == b""
    assert len(commits) == 1 and len(commits[0].readings) == 3


def test_reply_decodes_as_a_confirmation() -> None:
    s = stub.script("0012345601", 1, 1782858600000)
    frame = sl651.decode_frame(stub.frame_of(s, 0))[0]
    stream: Stream[sl651.Frame] = Stream(sl651.take)
    (reply,) = stream.feed(sl651.confirmation(frame, 1782858606000))
    assert isinstance(reply, sl651.Frame) and reply.header.downlink and reply.serial == 1
