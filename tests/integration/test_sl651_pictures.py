"""SL651 pictures (function 36) from the station stub over real TCP into a real gateway:
packets joined (one lost on the way and asked for again with NAK), the JPEG kept as a file
named by station and observation time, listed and served by the API, sent again and kept
once, and carried by `stationgw backup` / `restore`."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from drivers.sl651 import codec as sl651
from firmware_stubs.sl651_station import picture_packets, send_picture
from tests.conftest import REPO, Mosquitto, api
from tests.integration.field import config, gateway, rows, until

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
id = "hs-pic"
name = "上坪河视频水位站"
kind = "hydrology"
point = "p"
transport = {{ kind = "sl651", address = "0012345621", elements = {{ Z = "level_m" }} }}
metrics.level_m = {{ unit = "m", min = 0, max = 100 }}

[sl651]
listen = {{ host = "127.0.0.1", port = 0 }}

[broker]
port = {broker}
client_id = "gw-sl651-pictures"

[database]
path = "data/station.db"

[http]
port = 0
"""


def a_jpeg() -> bytes:
    """A real JPEG (a 320 × 240 gradient, Pillow) of several kilobytes: several packets."""
    img = Image.new("RGB", (320, 240))
    img.putdata([(x % 256, y % 256, (x * y) % 256) for y in range(240) for x in range(320)])
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_picture_is_joined_kept_served_and_backed_up(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port))
    jpeg = a_jpeg()
    assert len(jpeg) > 3 * 1024
    # observed 2026-07-01 06:30 Beijing time = 2026-06-30 22:30 UTC (UTC+8, no DST)
    obs = datetime(2026, 7, 1, 6, 30, tzinfo=BJ)
    obs_ms = int(obs.timestamp()) * 1000
    packets = picture_packets("0012345621", 12, obs_ms, int(time.time() * 1000), jpeg)
    n = len(packets)
    assert n >= 4
    db = cfg.database.path
    expected_file = tmp_path / "data" / "pictures" / "hs-pic" / "20260630T223000Z.jpg"

    async def main() -> tuple[list[sl651.Frame], list[sl651.Frame], bytes, list[dict[str, object]]]:
        async with gateway(cfg) as running:
            assert running.field is not None
            (port,) = running.field.ports()
            answers = await send_picture("127.0.0.1", port, packets, skip=3)
            # the same picture again (a station that missed the EOT): kept once
            again = await send_picture("127.0.0.1", port, packets)
            url = f"http://127.0.0.1:{running.http_port}"

            def http() -> tuple[bytes, list[dict[str, object]]]:
                with closing(api(url, db, "viewer")) as c:
                    listed = c.get("/api/devices/hs-pic/pictures").json()
                    image = c.get(str(listed[0]["url"]))
                    assert image.headers["content-type"] == "image/jpeg"
                    assert c.get("/api/devices/nope/pictures").status_code == 404
                    assert c.get("/api/pictures/999").status_code == 404
                    (dev,) = [d for d in c.get("/api/devices").json() if d["id"] == "hs-pic"]
                    assert dev["pictures"] == 1
                    return image.content, listed

            image, listed = await asyncio.to_thread(http)
            await until(lambda: rows(db, "SELECT 1 FROM pictures"), "picture row")
            return answers, again, image, listed

    answers, again, image, listed = asyncio.run(main())
    # packet 3 missing: NAK naming it (table 23), then EOT with the total once whole
    assert [(a.header.end, a.header.packet) for a in answers] == [
        (sl651.NAK, (n, 3)),
        (sl651.EOT, (n, n)),
    ]
    assert [(a.header.end, a.header.packet) for a in again] == [(sl651.EOT, (n, n))]
    assert expected_file.read_bytes() == jpeg
    assert image == jpeg
    assert listed == [
        {
            "id": 1,
            "device": "hs-pic",
            "observed_at": obs_ms,
            "received_at": listed[0]["received_at"],
            "bytes": len(jpeg),
            "url": "/api/pictures/1",
        }
    ]
    assert rows(db, "SELECT device, observed_at, file, bytes FROM pictures") == [
        ("hs-pic", obs_ms, "hs-pic/20260630T223000Z.jpg", len(jpeg))
    ]

    # the backup carries the picture beside the database copy, the restore puts it back
    out = tmp_path / "backup" / "b.db"
    out.parent.mkdir()
    said = cli("backup", str(out), "--db", str(db))
    assert f"1 picture, {len(jpeg)} bytes in {out}.pictures" in said, said
    assert (out.parent / "b.db.pictures" / "hs-pic" / "20260630T223000Z.jpg").read_bytes() == jpeg
    other = tmp_path / "other" / "station.db"
    cli("restore", str(out), "--db", str(other))
    assert (
        tmp_path / "other" / "pictures" / "hs-pic" / "20260630T223000Z.jpg"
    ).read_bytes() == jpeg
