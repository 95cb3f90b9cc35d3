"""The Devices page's command buttons: a technician queues a clock setting for an SL651
station from the page; a viewer sees no buttons. The station's non-standard frames counted
on its row and its pictures (function 36) shown at the station's time, in Chinese and in
English, with a text audit of both. Real Chromium against `stationgw run`, fed by the SL651
station stub over real TCP."""

from __future__ import annotations

import asyncio
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drivers.sl651 import codec as sl651
from firmware_stubs.sl651_station import picture_packets, send_picture
from tests.conftest import Gateway, add_user, free_port
from tests.integration.test_browser import browser, log_in, shots, visit  # noqa: F401
from tests.integration.test_browser_board import audit
from tests.integration.test_sl651_pictures import a_jpeg

pytestmark = pytest.mark.integration

SL651 = """
[[devices]]
id = "hs-01"
name = "上坪河水文站"
kind = "hydrology"
point = "p1"
metrics.level_m = { name = "水位", unit = "m", min = 0, max = 50 }
transport = { kind = "sl651", address = "0012345601", elements = { Z = "level_m" } }

[[devices]]
id = "geo-01"
name = "后山普适型监测仪"
kind = "geohazard"
point = "p1"
metrics.crack_mm = { name = "裂缝", unit = "mm", min = 0, max = 500 }
transport = { kind = "cigem", dev_id = "53000012", sensors = { L1_LF_1 = "crack_mm" } }

[[devices]]
id = "fp-01"
name = "镇政府大楼火灾报警控制器"
kind = "fire_panel"
point = "p1"
metrics.heartbeat = { unit = "1", name = "心跳", min = 0, max = 1 }
transport = { kind = "gb26875", address = "0A0000000001" }

[sl651]
listen = { host = "127.0.0.1", port = PORT }

[gb26875]
listen = { host = "127.0.0.1", port = GBPORT }

[cigem]
topic = "$dp"
"""
BJ = ZoneInfo("Asia/Shanghai")
NAMES = (
    "上坪河水文站",
    "雨量计2",
    "雨量计",
    "一号点",
    "测试站",
    "一村",
    "水位",
    "雨量",
    "电池电压",
    "后山普适型监测仪",
    "镇政府大楼火灾报警控制器",
    "裂缝",
    "心跳",
)


def bcd(t: datetime, n: int) -> str:
    return "".join(
        f"{p:02d}" for p in (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)[:n]
    )


def variant_frame() -> bytes:
    """A 32 report of hs-01 with `F1 28` where SL 651-2014 fixes `F1 F1` (a vendor's
    variant, issue 16): accepted, stored, counted for the station. Z 39 23 = 12.340 m."""
    now = datetime.now(BJ)
    body = f"0009 {bcd(now, 6)} F128 0012345601 48 F0F0 {bcd(now, 5)} 3923 00012340"
    return sl651.encode(
        centre=1, station="0012345601", password="1234", function=0x32, body=bytes.fromhex(body)
    )


def feed_station(port: int) -> bytes:
    """The variant frame (waiting for its confirmation), then a picture observed
    2026-07-01 06:30 at the station (Beijing time); returns the JPEG sent."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(variant_frame())
        assert s.recv(256), "no confirmation of the report"
    jpeg = a_jpeg()
    obs_ms = int(datetime(2026, 7, 1, 6, 30, tzinfo=BJ).timestamp()) * 1000
    packets = picture_packets("0012345601", 10, obs_ms, int(time.time() * 1000), jpeg)
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
        answers = pool.submit(asyncio.run, send_picture("127.0.0.1", port, packets)).result()
    assert answers[-1].header.end == sl651.EOT
    return jpeg


def test_technician_queues_a_command_from_the_devices_page(
    gateway: Gateway,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    text = gateway.config.read_text()  # the station's words for its metrics
    text = text.replace("metrics.rain_mm = {", 'metrics.rain_mm = { name = "雨量",')
    text = text.replace("metrics.battery_v = {", 'metrics.battery_v = { name = "电池电压",')
    head, sep, rest = text.partition("[broker]")
    port = free_port()
    devices = SL651.replace("GBPORT", str(free_port())).replace("PORT", str(port))
    gateway.config.write_text(head + devices + "\n" + sep + rest)
    gateway.start()
    jpeg = feed_station(port)
    deadline = time.monotonic() + 20  # health is written every check_s (5 s)
    while (
        next(d for d in gateway.get("/api/devices") if d["id"] == "hs-01")["health"]["variants"]
        != 1
    ):
        assert time.monotonic() < deadline, "the variant was not counted"
        time.sleep(0.2)
    viewer = log_in(
        browser, gateway, "screen", add_user(gateway.db, "screen", "viewer"), (1366, 768)
    )
    visit(viewer, "devices", shots, "viewer-commands")
    viewer.locator("tr[data-device=hs-01]").wait_for()
    assert viewer.locator("button[data-command]").count() == 0

    tech = log_in(browser, gateway, "sun", add_user(gateway.db, "sun", "technician"), (1366, 768))
    visit(tech, "devices", shots, "tech-commands")
    row = tech.locator("tr[data-device=hs-01]")
    assert row.locator("button[data-command]").all_inner_texts() == [
        "校时",
        "立即上报",
        "软件版本",
        "状态报警",
    ]
    assert tech.locator("tr[data-device=rg-01] button[data-command]").count() == 0  # MQTT
    row.locator("button[data-command='clock.set']").click()
    tech.locator("#notice[data-bad='0']").wait_for()
    assert "上坪河水文站：校时 已排队" in tech.locator("#notice").inner_text()
    tech.screenshot(path=str(shots / "tech-command-queued.png"), full_page=True)
    with closing(gateway.api("viewer")) as api:
        (c,) = api.get("/api/devices/hs-01/commands").json()
    assert (c["name"], c["state"], c["by"]) == ("clock.set", "queued", "sun")
    # CIGEM and GB/T 26875.3: the commands without parameters (the others by CLI or API)
    geo = tech.locator("tr[data-device=geo-01]")
    assert geo.locator("button[data-command]").all_inner_texts() == [
        "查询时钟",
        "查询状态",
        "重启设备",
    ]
    assert tech.locator("tr[data-device=fp-01] button[data-command]").all_inner_texts() == ["校时"]
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    tech.on("dialog", answer)
    geo.locator("button[data-command='reboot']").click()  # asked first; dismissed: nothing
    geo.locator("button[data-command='reboot']").click()  # asked again; accepted: queued
    tech.locator("#notice[data-bad='0']", has_text="重启设备").wait_for()
    assert asked[0] == "确定要重启设备“后山普适型监测仪”吗？设备重启期间不上报数据。"
    assert "后山普适型监测仪：重启设备 已排队" in tech.locator("#notice").inner_text()
    with closing(gateway.api("viewer")) as api:
        sent = api.get("/api/devices/geo-01/commands").json()
    assert [(c["name"], c["state"]) for c in sent] == [("reboot", "queued")]

    # the station's row: its non-standard frames counted, its picture a click away
    assert row.locator("td.variants").inner_text() == "1 帧"
    assert tech.locator("tr[data-device=rg-01] td.variants").inner_text() == "符合标准"
    row.locator("button[data-pictures]").click()
    fig = tech.locator("#picture-panel figure")
    fig.wait_for()
    # 2026-07-01 06:30 at the station, shown in the station's zone whatever the browser's
    assert fig.locator("figcaption").inner_text().startswith("观测时间 2026/07/01 06:30:00")
    assert tech.locator("#picture-panel h3").inner_text().startswith("上坪河水文站的图片")
    tech.wait_for_function("document.querySelector('#picture-panel img').naturalWidth === 320")
    src = fig.locator("img").get_attribute("src")
    assert src is not None
    assert tech.request.get(gateway.url + src).body() == jpeg
    tech.screenshot(path=str(shots / "tech-pictures-zh.png"), full_page=True)
    assert audit(tech, "zh", (*NAMES, "sun")) == []

    tech.locator("#lang").click()
    tech.locator("html[lang=en]").wait_for()
    assert row.locator("td.variants").inner_text() == "1 frame(s)"
    assert (
        tech.locator("#picture-panel figcaption")
        .inner_text()
        .startswith("observed 2026/07/01 06:30:00")
    )
    tech.screenshot(path=str(shots / "tech-pictures-en.png"), full_page=True)
    assert audit(tech, "en", (*NAMES, "sun")) == [], tech.locator("body").inner_text()
