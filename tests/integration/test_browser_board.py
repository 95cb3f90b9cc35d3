"""The duty room's working screen in real Chromium against a gateway fed by the firmware
stub over real Mosquitto, with the GSM modem stub on a pseudo-terminal: the 叫应 board
names the person called, the channel and a countdown that runs down, then 已应答 after
the person's SMS reply; a value over orange is drawn orange; every page is audited for
ids, English and None/undefined/NaN (and for Chinese in English); a stopped gateway greys
the screen under a full-width banner. Screenshots of every page at 1920×1080 and
1366×768 go to the folder the test prints. First paint and live-update times are printed,
not asserted."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from firmware_stubs.gsm_modem import GsmModemStub
from gateway.core.plans import plan_hash
from tests.conftest import Gateway, Mosquitto, add_user
from tests.integration.test_browser import ERRORS, browser, log_in, rain, shots  # noqa: F401

pytestmark = pytest.mark.integration

ORANGE = "rgb(255, 140, 26)"  # --orange in style.css
PEOPLE = """
[[people]]
id = "li"
name = "李网格"
phone = "13800000001"
roles = ["grid_member"]
grid = "point:p1"

[[people]]
id = "cun"
name = "张村长"
phone = "13800000002"
roles = ["leader"]
grid = "village:v1"

[[people]]
id = "zhao"
name = "赵值班"
roles = ["duty_officer"]

[[people]]
id = "qian"
name = "钱值班"
roles = ["duty_officer"]

[[duty]]
officer = "zhao"
start = "00:00"
end = "00:00"

[tickets]
ack_deadline = {{ orange = "10m" }}

[tickets.calling.orange]
channels = ["sms"]

[notify.sms]
port = "{port}"
poll_s = 1
timeout_s = 3
"""
ACC = """
[[rules]]
id = "rain-acc"
name = "小时累计雨量"
kind = "accumulation"
metric = "rain_mm"
source = "increment"

[[rules.windows]]
window = "1h"
blue = 15
"""
# the county's plan the station ran before this start (gateway/ingest/plans.py keeps it
# beside the database): no rules, the county's duty officer and its deadlines
COUNTY = {
    "name": "青山县应急管理局",
    "people": [
        {
            "id": "sun",
            "name": "孙县值班",
            "phone": "13900000001",
            "roles": ["duty_officer"],
            "grid": "county",
        }
    ],
    "deadlines": {"orange": 1200, "red": 600},
}
PAGES = ("overview", "calls", "map", "tickets", "trends", "devices", "duty")
# words a zh-CN page may show in Latin letters: units, file formats, the language switch
ALLOWED = {
    "mm",
    "km",
    "m",
    "V",
    "h",
    "min",
    "s",
    "dBm",
    "CSV",
    "Excel",
    "PDF",
    "HTML",
    "English",
    "DTU",
}
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def modem() -> Iterator[GsmModemStub]:
    stub = GsmModemStub.open()
    yield stub
    stub.close()


@pytest.fixture
def station(gateway: Gateway, modem: GsmModemStub) -> Gateway:
    text = gateway.config.read_text()
    text = text.replace(
        'metrics.rain_mm = { unit = "mm", min = 0, max = 50 }',
        'metrics.rain_mm = { unit = "mm", name = "雨量", min = 0, max = 50 }',
    ).replace(
        'metrics.battery_v = { unit = "V", min = 0, max = 15 }',
        'metrics.battery_v = { unit = "V", name = "电池电压", min = 0, max = 15 }',
    )
    text = text.replace('village = "v1"\n', 'village = "v1"\nlon = 118.05\nlat = 26.075\n', 1)
    gateway.config.write_text(text + PEOPLE.format(port=modem.port))
    rules = gateway.config.parent / "rules.toml"
    rules.write_text(rules.read_text() + ACC)
    plan = {"version": "2026.12-1", "key": "all", "rules": "", "county": COUNTY}
    gateway.db.parent.mkdir(parents=True, exist_ok=True)
    (gateway.db.parent / "county_plan.json").write_text(
        json.dumps({**plan, "hash": plan_hash("", COUNTY)}, ensure_ascii=False)
    )
    gateway.start()
    return gateway


def audit(page: Any, lang: str, names: tuple[str, ...]) -> list[str]:
    """What a person should not read on the page in `lang`."""
    text = page.locator("body").inner_text()
    text = text.replace("中文", " ")  # the language switch
    for n in names:  # proper names, the station's words and the signed-in user
        text = text.replace(n, " ")
    bad = [
        w
        for w in (
            "rain_mm",
            "battery_v",
            "rule:",
            "point:",
            "village:",
            "None",
            "undefined",
            "NaN",
            "null",
        )
        if w in text
    ]
    if lang == "zh":
        bad += sorted({w for w in re.findall(r"[A-Za-z][A-Za-z_]+", text) if w not in ALLOWED})
    else:
        bad += sorted(set(HAN.findall(text)))
    return bad


def test_call_board_countdown_answer_colours_audit_and_a_lost_gateway(
    station: Gateway,
    mosquitto: Mosquitto,
    modem: GsmModemStub,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    gw = station
    page = log_in(
        browser, gw, "zhao", add_user(gw.db, "zhao", "duty_officer", "zhao"), (1920, 1080)
    )
    paint = page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
    )
    print(f"\nfirst contentful paint: {paint:.0f} ms")

    # the storm: a report over orange; its value is drawn orange, the board calls 李网格 by SMS
    sent = time.monotonic()
    rain(mosquitto, 9.0, 1)
    cell = page.locator('[data-series="rg-01/rain_mm"] dd b')
    page.wait_for_function(
        "document.querySelector('[data-series=\"rg-01/rain_mm\"] dd b').textContent === '9'"
    )
    print(
        f"live update (stub publish -> value on the page): {(time.monotonic() - sent) * 1000:.0f} ms"
    )
    page.locator('[data-series="rg-01/rain_mm"][data-level="orange"]').wait_for()
    assert cell.evaluate("b => getComputedStyle(b).color") == ORANGE
    assert "雨量" in page.locator('[data-series="rg-01/rain_mm"] dt').inner_text()

    li = page.locator('#ov-board .callee[data-person="li"]')
    li.wait_for(timeout=30_000)
    assert "李网格" in li.inner_text() and "网格员" in li.inner_text()
    page.locator('#ov-board .callee[data-person="li"] .chan[data-channel="sms"]').wait_for()
    assert "短信" in li.locator(".chan").first.inner_text()
    assert li.locator(".call-state").inner_text().startswith("呼叫中")
    due = page.locator("#ov-board .countdown[data-label=answerIn]").first
    first = due.inner_text()
    assert first.startswith("应答剩余")
    page.wait_for_function(
        """t => { const n = document.querySelector('#ov-board .countdown[data-label=answerIn]');
                  return n && n.textContent !== t; }""",
        arg=first,
    )
    secs = lambda s: sum(int(x) * 60**i for i, x in enumerate(reversed(s.split()[-1].split(":"))))  # noqa: E731
    assert secs(due.inner_text()) < secs(first)  # it runs down
    # the county's deadline for orange (20 min) runs from the warning's issue
    county = page.locator("#ov-board .countdown[data-label=countyIn]").first
    assert county.inner_text().startswith("县级介入倒计时")
    with closing(gw.api("viewer")) as api:
        [w] = api.get("/api/board").json()["warnings"]
    assert abs(w["county_due"] - w["since"] - 1_200_000) < 5_000, w
    # the ticket list's 期限 column counts down too
    page.evaluate("location.hash = '#tickets'")
    page.locator("#queue td .countdown[data-label=answerIn]").first.wait_for()
    shot_all(page, shots, "board", names=())

    # the trend: per-report bars and the 1 h total, which crosses its own blue line at
    # the report that made the accumulation rule fire
    page.evaluate("location.hash = '#overview'")
    rain(mosquitto, 7.0, 2)  # 9 + 7 = 16 mm in the hour ≥ 15
    page.locator('[data-series="rg-01/rain_mm"] dd b:text-is("7")').wait_for()
    with closing(gw.api("technician")) as api:  # when the rules, run over the history, fire
        now = int(time.time() * 1000)
        r = api.post(
            "/api/rules/replay", json={"device": "rg-01", "from": now - 3_600_000, "to": now + 1}
        )
        fired = [x for x in r.json()["transitions"] if x["rule"] == "rain-acc"]
    assert [(x["level"], x["value"]) for x in fired] == [("blue", 16)]
    page.evaluate("location.hash = '#trends'")
    page.select_option("#series", "rg-01/rain_mm")
    page.wait_for_function("document.querySelector('#chart').chartData?.series.length === 2")
    page.wait_for_timeout(300)
    data = page.evaluate("document.querySelector('#chart').chartData")
    bars, acc = data["series"]
    assert [v for _, v in bars["data"]][-2:] == [9, 7]
    assert acc["lines"] == [15] and bars["lines"] == [2, 5, 8, 12]  # each with its own lines
    values = [v for _, v in acc["data"]]
    i = next(i for i, v in enumerate(values) if v >= 15)
    assert values[i] == 16 and values[i - 1] < 15
    assert acc["data"][i][0] == fired[0]["at"]  # at the report that made it fire
    assert page.locator("#ranges button[aria-pressed=true]").inner_text() == "1小时"
    page.screenshot(path=str(shots / "trend-accumulation.png"))

    # 李网格 answers by SMS with the ticket's code: 已应答
    with closing(gw.api("viewer")) as api:
        [w] = api.get("/api/board").json()["warnings"]
        assert w["people"][0]["phone"] == "138****0001"  # masked for viewers
    modem.receive("+8613800000001", f"收到{w['code']}，马上去")
    page.evaluate("location.hash = '#calls'")
    page.locator(
        '#board .callee[data-person="li"] .call-state[data-state="acknowledged"]'
    ).wait_for(timeout=30_000)
    with closing(gw.api("viewer")) as api:  # answered: the county has no reason to step in
        assert api.get("/api/board").json()["warnings"][0]["county_due"] is None
    assert page.locator("#board .countdown[data-label=countyIn]").count() == 0
    # the duty page names the county above and its people, not in the handover list
    page.evaluate("location.hash = '#duty'")
    page.locator('#county-above li[data-person="sun"]').wait_for()
    above = page.locator("#county-above").inner_text()
    assert "上级：青山县应急管理局" in above and "孙县值班（值班员）" in above, above
    assert "橙色 20分钟" in above and "蓝色 留在乡镇" in above, above
    assert "孙县值班" not in page.locator("#handover select").inner_text()
    assert (
        page.locator('#board .callee[data-person="li"] .call-state')
        .inner_text()
        .startswith("已应答")
    )

    # every page, both sizes, both languages: nothing a person should not read
    names = ("zhao", "测试站")
    problems: dict[str, list[str]] = {}
    for size in ((1920, 1080), (1366, 768)):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        for name in (*PAGES, f"tickets/{w['ticket']}"):
            visit(page, name, shots, f"zh-{size[0]}")
            if bad := audit(page, "zh", names):
                problems[f"zh {name}"] = bad
    page.click("#lang")
    for name in (*PAGES, f"tickets/{w['ticket']}"):
        visit(page, name, shots, "en-1920")
        if bad := audit(
            page,
            "en",
            (
                *names,
                "李网格",
                "张村长",
                "赵值班",
                "钱值班",
                "一号点",
                "一村",
                "雨量计2",
                "雨量计",
                "短时强降雨",
                "小时累计雨量",
                "电池电压",
                "雨量",
                "孙县值班",
                "青山县应急管理局",
                f"收到{w['code']}，马上去",
            ),
        ):
            problems[f"en {name}"] = bad
    page.click("#lang")
    assert problems == {}

    # the wall screen at 1920×1080: map in the centre with a marker per device, the board,
    # warnings by level, rainfall ranking, devices, the officer on shift; no scrollbar
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(gw.url + "/screen")
    page.locator("body[data-page=screen][data-wall='1']").wait_for()
    page.locator('#scr-map .dev-marker[data-device="rg-01"][data-level="orange"]').wait_for()
    page.locator('#scr-map .dev-marker[data-device="rg-02"]').wait_for()
    page.locator('#scr-rain tr[data-device="rg-01"]').wait_for()
    page.locator('#scr-board .callee[data-person="li"]').wait_for()
    assert page.locator("#scr-duty").inner_text() == "赵值班"
    assert "16" in page.locator('#scr-rain tr[data-device="rg-01"]').inner_text()  # 1 h
    page.wait_for_timeout(500)
    assert page.evaluate(
        """(() => { const d = document.documentElement;
            return [d.scrollWidth <= d.clientWidth, d.scrollHeight <= d.clientHeight]; })()"""
    ) == [True, True]
    page.screenshot(path=str(shots / "screen-1920.png"))
    if bad := audit(page, "zh", names):
        problems["zh screen"] = bad
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "screen-1366.png"))
    assert problems == {}

    # the gateway stops: one full-width banner, the screen greyed
    gw.stop()
    page.locator("#stream-lost:not([hidden])").wait_for(timeout=30_000)
    assert page.locator("body").get_attribute("data-lost") == "1"
    box = page.locator("#stream-lost").bounding_box()
    assert box is not None and box["width"] >= page.viewport_size["width"] - 20
    assert "grayscale" in page.locator("main").evaluate("m => getComputedStyle(m).filter")
    page.screenshot(path=str(shots / "lost-screen.png"))
    assert ERRORS[id(page)] == []


def visit(page: Any, name: str, folder: Path, tag: str) -> None:
    page.evaluate(f"location.hash = '#{name}'")
    page.locator(f"body[data-page={name.split('/')[0]}]").wait_for()
    page.wait_for_load_state("networkidle")
    if name.startswith("tickets/"):
        page.locator("#ticket-detail h2").wait_for()
    page.wait_for_timeout(300)  # a render frame and the board's fetch
    page.screenshot(path=str(folder / f"{tag}-{name.replace('/', '-')}.png"), full_page=True)


def shot_all(page: Any, folder: Path, tag: str, names: tuple[str, ...]) -> None:
    page.screenshot(path=str(folder / f"{tag}.png"), full_page=True)
