"""Commands to a device: queued over the API by a technician, sent after the station's next
report over real TCP, answered, audited; bad commands refused with a 4xx, nothing queued."""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from drivers.link.framing import Stream
from drivers.sl651 import codec as sl651
from firmware_stubs import sl651_station as stub
from gateway.cli import main
from tests.conftest import Mosquitto, api
from tests.integration.field import gateway, rows, until
from tests.integration.test_sl651_packets import STATION, bcd, config

pytestmark = pytest.mark.integration


def post(url: str, db: Path, role: str, device: str, body: object) -> httpx.Response:
    with closing(api(url, db, role)) as http:
        return http.post(f"/api/devices/{device}/commands", json=body)


def test_a_queued_clock_command_goes_out_after_the_next_report_and_is_answered(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    now = int(time.time() * 1000)

    async def main_() -> tuple[list[httpx.Response], sl651.Frame, list[dict[str, object]]]:
        async with gateway(cfg) as running:
            assert running.field is not None
            url = f"http://127.0.0.1:{running.http_port}"
            (port,) = running.field.ports()
            bad = await asyncio.gather(
                *(
                    asyncio.to_thread(post, url, db, role, device, body)
                    for role, device, body in [
                        ("technician", "nope", {"name": "clock.set"}),
                        ("technician", "hs-std", {"name": "reboot"}),
                        ("technician", "hs-std", {"name": "params.set", "args": {"21": "60"}}),
                        ("viewer", "hs-std", {"name": "clock.set"}),
                        ("technician", "hs-std", {"name": "clock.set"}),
                    ]
                )
            )
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(stub.timed_report("0012345611", 5, now, now, 1.0, 10.0, 12.0))
            await w.drain()
            s: Stream[sl651.Frame] = Stream(sl651.take)
            got: list[sl651.Frame] = []
            while not any(f.header.function == 0x4A for f in got):
                data = await asyncio.wait_for(r.read(256), 20)
                assert data, "connection closed"
                got.extend(f for f in s.feed(data) if isinstance(f, sl651.Frame))
            command = next(f for f in got if f.header.function == 0x4A)
            # the station sets its clock and answers (table 68): serial, its time, address
            t = bcd(datetime(2026, 7, 1, 6, 31, 5), 6)
            w.write(
                sl651.encode(
                    centre=1,
                    station="0012345611",
                    password="1234",
                    function=0x4A,
                    body=bytes.fromhex(f"0000 {t} F1F1 0012345611"),
                )
            )
            await w.drain()
            await until(
                lambda: rows(db, "SELECT 1 FROM device_commands WHERE state = 'answered'"),
                "command answered",
            )
            w.close()

            def listing() -> list[dict[str, object]]:
                with closing(api(url, db, "viewer")) as http:
                    out: list[dict[str, object]] = http.get("/api/devices/hs-std/commands").json()
                    return out

            return bad, command, await asyncio.to_thread(listing)

    bad, command, listing = asyncio.run(main_())
    assert [r.status_code for r in bad] == [404, 400, 400, 403, 202]
    assert "设备 nope 不存在" in bad[0].json()["detail"]
    assert "unknown SL651 command 'reboot'" in bad[1].json()["detail"]
    assert bad[2].json()["detail"] == "上坪河水位站: 21 加报时间间隔(min): 60 is outside 0…59"
    h = command.header
    assert (h.downlink, h.end, h.station, h.password) == (True, sl651.ENQ, "0012345611", "1234")
    assert command.serial == 0 and command.sent_at is not None
    assert abs(command.sent_at - now) < 600_000  # the gateway's clock, to the second
    (c,) = listing
    assert (c["name"], c["state"], c["attempts"]) == ("clock.set", "answered", 1)
    assert c["answer"] == "遥测站时钟: 2026-07-01 06:31:05"
    actions = rows(db, "SELECT action, user FROM audit WHERE action LIKE 'command.%' ORDER BY id")
    assert [a for a, _ in actions] == ["command.queued", "command.sent", "command.answered"]
    assert actions[0][1].startswith("technician")


def test_cli_refuses_a_bad_command_before_sending_anything(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    config(tmp_path, STATION.format(broker=mosquitto.port))
    path = str(tmp_path / "station.toml")
    base = ["command", "-c", path, "--user", "nobody"]
    assert main([*base, "hs-std", "params.set", "20=5"]) == 2
    assert "20 定时报时间间隔(h): 5 is not one of" in capsys.readouterr().err
    assert main([*base, "ghost", "clock.set"]) == 2
    assert "device 'ghost' is not in" in capsys.readouterr().err
    assert main([*base, "hs-std", "history", "element"]) == 2
    assert "'element' is not key=value" in capsys.readouterr().err


def test_a_drifting_station_clock_is_set_by_the_gateway_and_recorded(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    now = int(time.time() * 1000)

    async def main_() -> list[sl651.Frame]:
        async with gateway(cfg) as running:
            assert running.field is not None
            (port,) = running.field.ports()
            r, w = await asyncio.open_connection("127.0.0.1", port)
            # sent 10 minutes behind the gateway's clock (limit 120 s by default)
            w.write(stub.timed_report("0012345612", 9, now - 600_000, now - 600_000, 1, 10, 12))
            await w.drain()
            s: Stream[sl651.Frame] = Stream(sl651.take)
            got: list[sl651.Frame] = []
            while not any(f.header.function == 0x4A for f in got):
                data = await asyncio.wait_for(r.read(256), 20)
                assert data, "connection closed"
                got.extend(f for f in s.feed(data) if isinstance(f, sl651.Frame))
            w.close()
            return got

    got = asyncio.run(main_())
    clock = next(f for f in got if f.header.function == 0x4A)
    assert clock.header.downlink and clock.header.station == "0012345612"
    assert clock.sent_at is not None and abs(clock.sent_at - now) < 60_000
    (queued,) = rows(db, "SELECT user, detail FROM audit WHERE action = 'command.queued'")
    assert queued[0] is None  # the gateway itself
    # 10 minutes behind; the frame's time is whole seconds, so the drift reads -600 or -601 s
    drift = re.search(r"遥测站时钟偏差 (-\d+) 秒", queued[1])
    assert drift is not None and int(drift.group(1)) in (-600, -601)
    assert rows(db, "SELECT name, state FROM device_commands") == [("clock.set", "sent")]
