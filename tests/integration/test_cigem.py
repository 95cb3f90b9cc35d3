"""CIGEM devices over real Mosquitto: late batches stored once, faults quarantined, health."""

from __future__ import annotations

import asyncio
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.cigem import codec as cigem
from firmware_stubs import cigem_device as stub
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

[[devices]]
id = "geo-01"
name = "普适型裂缝计"
kind = "crack_meter"
point = "p"
interval_s = 600
transport = {{ kind = "cigem", dev_id = "53000012", sensors = {{ L1_LF_1 = "crack_mm", "L1_QJ_1.X" = "tilt_x" }} }}
metrics.crack_mm = {{ unit = "mm", min = 0, max = 500 }}
metrics.tilt_x = {{ unit = "°", min = -90, max = 90 }}

[broker]
port = {broker}
client_id = "gw-cigem"

[database]
path = "station.db"

[http]
port = 0
"""


def test_late_batches_stored_once_faults_quarantined_status_to_health(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    start = int(time.time() * 1000) - 86_400_000
    s = stub.samples(30, start)
    batches = [s[0:10], s[10:20], s[20:30]]
    payloads = (
        stub.faulty("garbage", "53000012", batches[0])
        + stub.faulty("repeat", "53000012", batches[1])
        + stub.faulty("bad_length", "53000012", batches[2])
        + stub.faulty("unknown", "53000012", batches[2])
    )

    async def main() -> dict[str, object]:
        async with gateway(cfg) as running:
            assert running.field is not None and running.field.drivers.get("cigem") is not None
            await until(
                lambda: running.field.drivers.get("cigem").source.connected, "cigem subscribed"
            )  # type: ignore[union-attr]
            await asyncio.to_thread(stub.publish, "127.0.0.1", mosquitto.port, "geo-01", payloads)
            await until(lambda: len(series(db, "geo-01", "crack_mm")) == 30, "30 stored")
            await until(lambda: len(rows(db, "SELECT 1 FROM quarantine")) == 3, "3 quarantined")
            await until(
                lambda: (
                    rows(db, "SELECT battery FROM device_health WHERE device='geo-01'") == [(87.0,)]
                ),
                "health",
            )
            url = f"http://127.0.0.1:{running.http_port}"

            def get_devices() -> Any:
                with closing(api(url, cfg.database.path, "viewer")) as http:
                    return http.get("/api/devices").json()

            (dev,) = await asyncio.to_thread(get_devices)
            return dict(dev)

    dev = asyncio.run(main())
    assert series(db, "geo-01", "crack_mm") == [(x.ts, x.crack_mm) for x in s]
    assert series(db, "geo-01", "tilt_x") == [(x.ts, x.tilt_x) for x in s]
    reasons = sorted(r for (r,) in rows(db, "SELECT reason FROM quarantine"))
    assert reasons[0] == "CIGEM device 'ghost-0000' is not configured"
    assert reasons[1].startswith("CIGEM payload: length field says")
    assert reasons[2] == "CIGEM payload: payload type 7 is not 1…4 (byte offset 0)"
    health = dev["health"]
    assert health == {  # type: ignore[comparison-overlap]
        **health,  # type: ignore[dict-item]
        "battery": 87.0,
        "supply_v": 12.1,
        "solar_v": 18.2,
        "signal": -71.0,
        "temperature": 23.5,
        "firmware": "CG-2.1.7",
    }
    assert dev["transport"] == "cigem" and dev["online"] is True


def test_variants_counted_and_a_type_3_picture_kept(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Bare JSON and a type byte without the length are stored and counted for the
    device; a type 3 JPEG is kept as its picture (bytes as sent), a type 3 file that is no
    JPEG is quarantined saying so."""
    from tests.integration.test_sl651_pictures import a_jpeg

    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path
    s = stub.samples(4, int(time.time() * 1000) - 3_600_000)
    jpeg = a_jpeg()
    at = 1_775_377_390_000  # 2026-04-05 08:23:10 UTC
    payloads = [
        stub.variant("bare", "53000012", s[0:2]),
        stub.variant("type_byte", "53000012", s[2:4]),
        stub.file_payload("53000012", "image", at, jpeg),
        stub.file_payload("53000012", "log", None, b"not a picture"),
    ]

    async def main() -> None:
        async with gateway(cfg) as running:
            assert running.field is not None
            driver = running.field.drivers["cigem"]
            await until(lambda: driver.source.connected, "cigem subscribed")
            await asyncio.to_thread(stub.publish, "127.0.0.1", mosquitto.port, "geo-01", payloads)
            await until(lambda: len(series(db, "geo-01", "crack_mm")) == 4, "4 stored")
            await until(lambda: rows(db, "SELECT 1 FROM pictures"), "picture kept")
            await until(
                lambda: (
                    rows(db, "SELECT variants FROM device_health WHERE device='geo-01'") == [(2,)]
                ),
                "2 variants counted",
            )
            text = await asyncio.to_thread(
                lambda: httpx.get(f"http://127.0.0.1:{running.http_port}/metrics").text
            )
            for v in (cigem.BARE_JSON, cigem.TYPE_BYTE_ONLY):
                assert (
                    f'stationgw_frame_variants_total{{device="geo-01",variant="{v}"}} 1.0' in text
                )

    asyncio.run(main())
    assert series(db, "geo-01", "crack_mm") == [(x.ts, x.crack_mm) for x in s]
    assert rows(db, "SELECT device, observed_at, file, bytes FROM pictures") == [
        ("geo-01", at, "geo-01/20260405T082310Z.jpg", len(jpeg))
    ]
    assert (tmp_path / "pictures" / "geo-01" / "20260405T082310Z.jpg").read_bytes() == jpeg
    assert rows(db, "SELECT last_variant FROM device_health WHERE device='geo-01'") == [
        (cigem.TYPE_BYTE_ONLY,)
    ]
    assert rows(db, "SELECT reason FROM quarantine") == [
        (
            "geo-01: CIGEM type 3 file 'log' of 13 bytes is not a JPEG picture (starts 6E 6F); not kept",
        )
    ]


def test_cmd_downlinks_go_out_after_a_report_and_are_answered(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """`$cmd` downlinks through the command queue over real Mosquitto: queued by a
    technician, published to `$creq/<devId>/<id>` after the device's next `$dp` message,
    answered by the device stub on `$dr` as the public firmware answers; bad parameters a
    400 with nothing queued. Payloads expected as the firmware's comments spell them."""
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    db = cfg.database.path

    def post(url: str, body: object) -> httpx.Response:
        with closing(api(url, db, "technician")) as http:
            return http.post("/api/devices/geo-01/commands", json=body)

    def cmd(name: str, **args: str) -> dict[str, object]:
        return {"name": name, "args": args}

    async def main() -> tuple[list[httpx.Response], list[tuple[str, str]], list[int]]:
        async with gateway(cfg) as running:
            assert running.field is not None
            driver = running.field.drivers["cigem"]
            await until(lambda: driver.source.connected, "cigem subscribed")
            url = f"http://127.0.0.1:{running.http_port}"
            answers = [
                await asyncio.to_thread(post, url, body)
                for body in (
                    cmd(
                        "interval.set",
                        sensor_id="L9_XX_1",
                        sample_intv="1",
                        upload_intv="1",
                        plus_intv="1",
                    ),
                    cmd(
                        "interval.set",
                        sensor_id="L1_LF_1",
                        sample_intv="10",
                        upload_intv="0",
                        plus_intv="5",
                    ),
                    cmd("clock.set", server="ntp server!"),
                    cmd("upgrade"),
                    cmd(
                        "interval.set",
                        sensor_id="L1_LF_1",
                        sample_intv="10",
                        upload_intv="60",
                        plus_intv="5",
                    ),
                    cmd("clock.set", server="ntp.example.cn"),
                    cmd("clock.read"),
                    cmd("reboot"),
                )
            ]
            ids = [int(r.json()["id"]) for r in answers[4:]]
            device = await asyncio.to_thread(
                stub.Responder, "127.0.0.1", mosquitto.port, "53000012"
            )
            try:
                s = stub.samples(1, int(time.time() * 1000))
                await asyncio.to_thread(
                    stub.publish,
                    "127.0.0.1",
                    mosquitto.port,
                    "geo-01",
                    [stub.payload("53000012", s)],
                )
                await until(
                    lambda: (
                        rows(db, "SELECT count(*) FROM device_commands WHERE state = 'answered'")
                        == [(4,)]
                    ),
                    "four answered",
                )
            finally:
                device.close()
            return answers, device.received, ids

    answers, received, ids = asyncio.run(main())
    assert [r.status_code for r in answers] == [400, 400, 400, 400, 202, 202, 202, 202]
    details = [r.json()["detail"] for r in answers[:4]]
    assert details[0] == (
        "普适型裂缝计: interval.set: sensor_id='L9_XX_1' is not a sensor of this device "
        "(L1_LF_1, L1_QJ_1)"
    )
    assert details[1] == "普适型裂缝计: interval.set: upload_intv='0' is not a whole number 1…65535"
    assert (
        details[2] == "普适型裂缝计: clock.set: server='ntp server!' is not a host name or address"
    )
    assert "unknown CIGEM command 'upgrade'" in details[3]
    assert received == [
        (
            f"$creq/53000012/{ids[0]}",
            "$cmd=setsensortime&sensor_id=L1_LF_1&sample_intv=10&upload_intv=60&plus_intv=5",
        ),
        (f"$creq/53000012/{ids[1]}", "$cmd=settime&server=ntp.example.cn"),
        (f"$creq/53000012/{ids[2]}", "$cmd=reqtime"),
        (f"$creq/53000012/{ids[3]}", "$cmd=reboot"),
    ]
    got = rows(db, "SELECT name, state, answer FROM device_commands ORDER BY id")
    assert got[0] == ("interval.set", "answered", "成功 (succ)")
    assert got[1] == ("clock.set", "answered", "成功 (succ)")
    assert got[2][:2] == ("clock.read", "answered") and got[2][2].startswith("设备时钟: 20")
    assert got[3] == ("reboot", "answered", "成功 (succ)")
