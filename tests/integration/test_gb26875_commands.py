"""GB/T 26875.3 requests and controls through the command queue, over real TCP to the
panel stub: queued by a technician, sent after the panel's next frame, each answered with
the serial the centre gave it (response 5 with the objects asked for, confirm 3 for the
clock); bad parameters a 400 with nothing queued. The application data expected is
written out by hand from the standard's layout (type · count · object, 8.1 and 8.3.2),
not from our encoder."""

from __future__ import annotations

import asyncio
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from firmware_stubs import alarm_panel as stub
from tests.conftest import Mosquitto, api
from tests.integration.field import config, gateway, rows, until
from tests.integration.test_gb26875 import PANEL, STATION

pytestmark = pytest.mark.integration


def post(url: str, db: Path, body: object) -> httpx.Response:
    with closing(api(url, db, "technician")) as http:
        return http.post("/api/devices/fp-01/commands", json=body)


def test_requests_and_clock_sync_go_out_after_a_frame_and_are_answered(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(panel=PANEL, broker=mosquitto.port))
    db = cfg.database.path
    # bit 0 normal + bit 2 fault = 0x0005 (8.2.1.2)
    panel = stub.Panel(PANEL, {(1, 1, 1001): (0x0005, "三楼烟感")}, clock_offset_ms=-600_000)

    async def main() -> list[httpx.Response]:
        async with gateway(cfg) as running:
            assert running.field is not None
            (port,) = running.field.ports()
            url = f"http://127.0.0.1:{running.http_port}"
            answers = [
                await asyncio.to_thread(post, url, db, body)
                for body in (
                    {
                        "name": "component.read",
                        "args": {
                            "system_type": "1",
                            "system_address": "1",
                            "component_address": "4294967296",
                        },
                    },
                    {"name": "reboot"},
                    {"name": "clock.set", "args": {"time": "now"}},
                    {"name": "system.read", "args": {"system_type": "1"}},
                    {
                        "name": "component.read",
                        "args": {
                            "system_type": "1",
                            "system_address": "1",
                            "component_address": "1001",
                        },
                    },
                    {"name": "system.read", "args": {"system_type": "1", "system_address": "1"}},
                    {"name": "clock.set"},
                )
            ]
            assert rows(db, "SELECT count(*) FROM device_commands") == [(3,)]
            now = int(time.time() * 1000)
            await stub.run_panel(
                panel, "127.0.0.1", port, [stub.system_state(PANEL, 7, now)], linger_s=2.0
            )
            await until(
                lambda: (
                    rows(db, "SELECT count(*) FROM device_commands WHERE state = 'answered'")
                    == [(3,)]
                ),
                "three answered",
            )
            return answers

    answers = asyncio.run(main())
    assert [r.status_code for r in answers] == [400, 400, 400, 400, 202, 202, 202]
    details = [r.json()["detail"] for r in answers[:4]]
    assert details[0] == (
        "镇政府大楼火灾报警控制器: component.read: component_address=4294967296 is outside 0…4294967295"
    )
    assert "unknown GB/T 26875.3 command 'reboot'" in details[1]
    assert details[2] == "镇政府大楼火灾报警控制器: clock.set: unknown parameter 'time'"
    assert details[3] == "镇政府大楼火灾报警控制器: system.read: system_address=… is missing"
    # what reached the panel, in the order queued: command byte, application data
    got = [(f.command, f.destination, f.source, f.raw[27:-3]) for f in panel.received]
    assert got[0] == (4, PANEL, stub.CENTRE, bytes.fromhex("3E 01 01 01 E9030000"))  # 62; 1001
    assert got[1] == (4, PANEL, stub.CENTRE, bytes.fromhex("3D 01 01 01"))  # 61
    assert got[2][:3] == (1, PANEL, stub.CENTRE) and got[2][3][:2] == bytes.fromhex("5A 01")
    assert len(got[2][3]) == 8  # type 90, one object: the 6-byte time
    assert len({f.serial for f in panel.received}) == 3 and 0 not in {
        f.serial for f in panel.received
    }
    assert abs(panel.clock_offset_ms) < 2_000  # was 10 minutes behind; set to the centre's
    assert rows(db, "SELECT name, state, answer FROM device_commands ORDER BY id") == [
        ("component.read", "answered", "部件 1/1/1001 三楼烟感: 正常运行、故障"),
        ("system.read", "answered", "系统 1/1: 正常运行"),
        ("clock.set", "answered", "已确认"),
    ]
