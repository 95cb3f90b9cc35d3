"""The county duty room in real Chromium (Debian's, through Playwright) against the
county app (uvicorn) on a throwaway PostgreSQL filled with a county in a storm
(tests/county_data.py): log in, the warnings of every township with who was called and
who answered, the county ticket opened by escalation and taken (签收) from the page, what
a viewer may not do, CSRF, fleet health, the map, one station, the monthly report, the
wall screen; every page audited for ids, None/undefined/NaN and English in zh-CN (and
Chinese in English). Screenshots go to the folder the test prints."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from gateway.county import escalation, users
from gateway.county.http import create_app
from gateway.notify.base import Delivery
from tests.conftest import free_port
from tests.county_data import config, fill
from tests.county_pg import migrate, postgres
from tests.integration.test_browser import browser, shots  # noqa: F401

pytestmark = pytest.mark.integration

PASSWORD = "storm-night-2026"
HAN = re.compile(r"[\u4e00-\u9fff]")
ALLOWED = {"mm", "m", "km", "MB", "English", "s", "min", "h", "PDF", "HTML"}
# ids a person must never read (stations, points, villages, devices, people, metrics)
IDS = (
    "xikou",
    "shanwei",
    "dongling",
    "hekou",
    "beishan",
    "houshan",
    "xiaxi",
    "shangxi",
    "bridge",
    "tanxia",
    "lingtou",
    "rg-01",
    "wl-01",
    "wl-07",
    "rg-21",
    "wl-31",
    "rain_mm",
    "level_m",
    "wangwg",
    "zhang",
    "point:",
    "village:",
    "unanswered:",
)
# proper names and the station's own words: allowed in either language
NAMES = (
    "青山县应急管理局",
    "溪口镇",
    "山尾乡",
    "东岭镇",
    "河口街道",
    "北山乡",
    "后山滑坡点",
    "溪口大桥",
    "下溪村",
    "上溪村",
    "潭下河段",
    "潭下村",
    "岭头沟",
    "岭头村",
    "河湾泵站",
    "河湾社区",
    "后山雨量计",
    "大桥水位计",
    "潭下水位计",
    "岭头雨量计",
    "泵站水位计",
    "李网格",
    "张村长",
    "王网格",
    "陈网格",
    "周网格",
    "王值班",
    "刘局长",
    "雨量",
    "水位",
)


class Store:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def connect(self) -> Any:
        return psycopg.connect(self.dsn)


class Modem:
    name = "sms"

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, d: Delivery) -> None:
        return None


class County(str):
    """The county app's URL; `stop()` stops the app (the page must say it is cut off)."""

    stop: Any
    dsn: str


@pytest.fixture
def county(tmp_path: Path) -> Iterator[County]:
    """The county app on a free port over a storm; yields its URL."""
    now = int(time.time() * 1000)
    with postgres() as dsn:
        at = datetime.fromtimestamp(now / 1000, UTC)
        migrate(dsn, tuple(at - timedelta(days=d) for d in range(0, 70, 5)))
        cfg = config()
        with psycopg.connect(dsn, autocommit=True) as conn:
            fill(conn, now)
            # the escalation pass: the red of 溪口镇 is 14 minutes unanswered
            assert len(escalation.step(conn, cfg, now)) == 1
            assert asyncio.run(escalation.send_calls(conn, cfg, {"sms": Modem()})) == 2
            users.add_user(conn, "wang", "duty_officer", PASSWORD, "wang", now)
            users.add_user(conn, "screen", "viewer", PASSWORD, None, now)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(cfg, Store(dsn)), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        for _ in range(400):
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            pytest.fail("the county app did not start")
        out = County(url)

        def stop() -> None:
            server.should_exit = True
            thread.join(30)

        out.stop = stop
        out.dsn = dsn
        try:
            yield out
        finally:
            server.should_exit = True
            thread.join(30)


def audit(page: Any, lang: str) -> list[str]:
    text = page.locator("body").inner_text()
    text = text.replace("中文", " ")
    for n in sorted(NAMES, key=len, reverse=True):
        text = text.replace(n, " ")
    text = re.sub(r"\b(wang|screen)\b · ", " ", text)  # the signed-in user's name
    text = re.sub(r"\b20\d\d\.\d\d-\d\b|\b0\.9\.3\b", " ", text)  # plan and gateway versions
    bad = [w for w in (*IDS, "None", "undefined", "NaN", "null") if w in text]
    if lang == "zh":
        bad += sorted({w for w in re.findall(r"[A-Za-z][A-Za-z_]+", text) if w not in ALLOWED})
    else:
        bad += sorted(set(HAN.findall(text)))
    return bad


def log_in(browser: Any, url: str, name: str, size: tuple[int, int], path: str = "/") -> Any:  # noqa: F811
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url + path)
    page.locator("#login").wait_for(state="visible")
    page.fill("#login input[name=name]", name)
    page.fill("#login input[name=password]", PASSWORD)
    page.press("#login input[name=password]", "Enter")
    page.locator("#conn-state[data-state=live]").wait_for()
    return page


def visit(page: Any, name: str, folder: Path, tag: str) -> None:
    page.evaluate(f"location.hash = '#{name}'")
    page.locator(f"body[data-page={name.split('/')[0]}]").wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(folder / f"county-{tag}-{name.replace('/', '-')}.png"), full_page=True)


def test_county_duty_officer_sees_every_township_and_takes_the_escalation(
    county: str,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    page = log_in(browser, county, "wang", (1920, 1080))
    assert page.locator("#county-name").inner_text() == "青山县应急管理局"
    assert page.locator("#who").inner_text().startswith("wang · 值班员")

    # every township's warning, the most urgent first, by its names
    cards = page.locator("#warnings .warn-card")
    cards.first.wait_for()
    assert cards.count() == 3
    red = page.locator('#warnings .warn-card[data-station="xikou"]')
    assert red.get_attribute("data-level") == "red"
    text = red.inner_text()
    for words in (
        "溪口镇",
        "后山滑坡点",
        "下溪村",
        "呼叫中，未应答",
        "李网格",
        "张村长",
        "已督导到县",
    ):
        assert words in text, words
    orange = page.locator('#warnings .warn-card[data-station="shanwei"]').inner_text()
    assert "已应答" in orange and "王网格" in orange and "短信" in orange
    yellow = page.locator('#warnings .warn-card[data-station="dongling"] .countdown')
    assert yellow.inner_text().startswith("县级督导倒计时 5")  # 55 minutes left

    # the county ticket: in the banner and the table, with whom the county called
    banner = page.locator("#banner")
    assert banner.is_visible() and "溪口镇 · 后山滑坡点" in banner.inner_text()
    assert "乡镇 10 分钟内未应答" in banner.inner_text()
    row = page.locator("#county-tickets tr[data-county-ticket]")
    assert "王值班（值班员）短信 已发送" in row.inner_text()
    assert "刘局长（领导）短信 已发送" in row.inner_text()

    # fleet: the offline station with its backlog, clock and rejected plan
    fleet = page.locator('#fleet-brief tr[data-station="hekou"]')
    assert fleet.get_attribute("data-online") == "0"
    assert "2026.11-3 · 新方案被拒收" in fleet.inner_text()
    assert (
        page.locator('#fleet-brief tr[data-station="beishan"]').inner_text().count("从未上报") == 1
    )

    assert audit(page, "zh") == []
    page.screenshot(path=str(shots / "county-1920-overview.png"), full_page=True)

    # the open county ticket sounds the alarm once sound is on; 签收 from the banner stops it
    page.click("#sound")
    page.wait_for_function("window.countyAlarm.plays >= 1 && window.countyAlarm.playing")
    page.locator("#banner button.ack").click()
    page.wait_for_function("!window.countyAlarm.playing")
    page.locator('#county-tickets tr[data-state="acked"]').wait_for()
    assert "王值班" in page.locator('#county-tickets tr[data-state="acked"]').inner_text()
    assert page.locator("#banner").is_hidden()
    flag = page.locator(
        '#warnings .warn-card[data-station="xikou"] .county-flag[data-state="acked"]'
    )
    flag.wait_for()
    assert flag.inner_text() == "县级已签收：王值班"  # the person's name, not the user's id
    assert audit(page, "zh") == []

    for name in ("fleet", "map", "station/xikou", "report"):
        visit(page, name, shots, "1920")
        assert audit(page, "zh") == [], name
    # which station runs which plan; what the consumer refused
    visit(page, "fleet", shots, "1920")
    page.locator('#plans tr[data-plan="2026.12-1"]').wait_for()
    assert page.locator('#plans tr[data-plan="2026.12-1"]').inner_text().split("\t")[1:2] == [
        "全部站点"
    ]
    north = page.locator('#plans tr[data-plan="2026.11-3"]').inner_text()
    assert set(north.split("\t")[1].split("、")) == {"东岭镇", "河口街道", "北山乡"}
    assert north.split("\t")[3] == "2/3"  # of the 3 stations of the group it was sent to
    refused = page.locator("#refused tbody tr")
    assert refused.count() == 2 and "河口街道" in refused.first.inner_text()
    assert audit(page, "zh") == []
    # the map: stations in level colour, blinking while unanswered, offline greyed
    visit(page, "map", shots, "1920")
    marker = page.locator('.st-marker[data-station="xikou"]')
    assert marker.get_attribute("data-level") == "red" and marker.get_attribute("data-blink") == "1"
    assert page.locator('.st-marker[data-station="hekou"]').get_attribute("data-online") == "0"
    assert page.locator(".pt-marker[data-level=red]").count() == 1
    # one station: its tickets, a ticket's timeline, the trend from the county's store
    visit(page, "station/xikou", shots, "1920")
    page.locator('#st-tickets tr[data-ticket="12"]').click()
    timeline = page.locator("#st-ticket").inner_text()
    assert "发布预警" in timeline and "李网格" in timeline and "督导升级" in timeline
    page.locator("#st-chart svg").wait_for()
    assert "后山雨量计 · 雨量（mm）" in page.locator("#st-series").inner_text()
    page.screenshot(path=str(shots / "county-1920-station-ticket.png"), full_page=True)
    # the monthly report: a row per township
    visit(page, "report", shots, "1920")
    assert page.locator("#report-body tbody tr").count() == 5
    head = page.locator("#report-body .report-head").inner_text()
    assert head.startswith(
        "本月各乡镇共发布预警 3 次（红色 1 次、橙色 1 次），乡镇应答 1 次，督导到县 1 次"
    )
    assert "上月预警 2 次" in head and "有预警督导到县的乡镇：溪口镇" in head

    # English: the same screens with no Chinese but the names
    page.locator("#lang").click()
    for name in ("overview", "fleet", "station/xikou", "report"):
        visit(page, name, shots, "en")
        assert audit(page, "en") == [], name
    page.locator("#lang").click()
    assert page.errors == []


def test_a_viewer_on_the_wall_screen_sees_everything_and_can_take_nothing(
    county: County,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    # a storm: six more yellow warnings at 东岭镇, answered; the wall shows the 7 most urgent
    with psycopg.connect(county.dsn, autocommit=True) as conn:
        for i in range(6):
            opened = datetime.now(UTC) - timedelta(minutes=30 + i)
            conn.execute(
                "INSERT INTO tickets (station, id, kind, level, state, point, opened_at, seq) "
                "VALUES ('dongling', %s, 'warning', 'yellow', 'issued', 'lingtou', %s, %s)",
                (60 + i, opened, 9000 + i),
            )
            conn.execute(
                "INSERT INTO ticket_events (station, id, ticket_id, seq, at, kind, actor, channel, "
                "body) VALUES ('dongling', %s, %s, %s, %s, 'acknowledged', '陈网格', 'voice', '{}')",
                (9100 + i, 60 + i, 9200 + i, opened + timedelta(minutes=2)),
            )
    page = log_in(browser, county, "screen", (1920, 1080), "/screen")
    page.locator("body[data-page=screen]").wait_for()
    page.locator("#scr-warnings .warn-card").first.wait_for()
    shown = page.locator("#scr-warnings .warn-card:visible")
    more = page.locator("#scr-warnings .more").inner_text()
    m = re.fullmatch(r"另有 (\d+) 条预警（级别较低或已应答）未显示，见总览", more)
    assert m is not None, more
    assert shown.count() >= 3 and shown.count() + int(m[1]) == 9
    assert shown.first.get_attribute("data-level") == "red"
    # every card shown is whole: nothing cut at the bottom of the column
    assert page.evaluate(
        """() => { const b = document.querySelector('#scr-warnings').getBoundingClientRect().bottom;
           return [...document.querySelectorAll('#scr-warnings .warn-card')]
             .filter((c) => !c.hidden).every((c) => c.getBoundingClientRect().bottom <= b + 1); }"""
    )
    # the six answered before anyone was called: 已应答 and no "nobody called" under it
    answered = page.evaluate(
        """() => [...document.querySelectorAll('#scr-warnings .warn-card[data-station=dongling]')]
             .filter((c) => c.textContent.includes('已应答：陈网格')).map((c) => c.textContent)"""
    )
    assert len(answered) == 6 and not any("尚未呼叫任何人" in c for c in answered), answered
    page.locator('.st-marker[data-station="xikou"]').wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / "county-wall-1920.png"))
    assert page.locator("#banner button.ack").count() == 0  # a viewer: no 签收
    assert page.locator("#scr-duty").inner_text() == "王值班"
    assert audit(page, "zh") == []
    # no scrolling on the wall
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
    # the API refuses the viewer, and anyone without the CSRF token
    status = page.evaluate(
        """async () => { const s = await (await fetch('/api/session')).json();
           const r = await fetch('/api/county-tickets/1/ack', {method: 'POST',
             headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf}, body: '{}'});
           const n = await fetch('/api/county-tickets/1/ack', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: '{}'});
           return [r.status, n.status]; }"""
    )
    assert status == [403, 403]
    assert httpx.get(county + "/api/overview").status_code == 401
    small = log_in(browser, county, "wang", (1366, 768))
    small.locator("#warnings .warn-card").first.wait_for()
    small.screenshot(path=str(shots / "county-1366-overview.png"), full_page=True)
    assert page.errors == [] and small.errors == []
    # the county service gone: one full-width banner, the screen greyed
    county.stop()
    lost = page.locator("#stream-lost")
    lost.wait_for()
    assert lost.inner_text().startswith("与县级服务的连接已断开")
    assert page.locator("body[data-lost='1']").count() == 1
    page.screenshot(path=str(shots / "county-wall-lost.png"))
