"""The duty-room page in real Chromium (Debian's, driven by Playwright) against a real
gateway process fed by a firmware stub over real Mosquitto: log in, live readings, the
alarm banner and its sound, acknowledging from the page, what a viewer may not do, CSRF,
the risk map. A screenshot of every page goes to a folder the test prints
(STATIONGW_SCREENSHOTS, or a folder under pytest's tmp dir)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from firmware_stubs.mqtt_device import run_device
from firmware_stubs.scenario import DeviceScript, MetricScript
from tests.conftest import Gateway, Mosquitto, add_user

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
BOUNDS = (118.0, 26.0, 118.2, 26.1)  # west, south, east, north
P1 = (118.05, 26.075)  # lon, lat of p1: 25 % from the left, 25 % from the top
MAP = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 800 400">
<rect width="800" height="400" fill="#dde8d0"/><path d="M40 40 L760 60 L700 360 L80 340 Z"
fill="none" stroke="#567" stroke-width="6"/></svg>"""
YELLOW = "rgb(255, 210, 63)"  # --yellow in style.css


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run the README test command (scripts/test)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STATIONGW_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the page: {folder}")
    return folder


@pytest.fixture
def station(gateway: Gateway, tmp_path: Path) -> Gateway:
    """The test station with p1 on a configured map."""
    (tmp_path / "map.svg").write_text(MAP)
    text = gateway.config.read_text().replace(
        'village = "v1"\n', f'village = "v1"\nlon = {P1[0]}\nlat = {P1[1]}\n', 1
    )
    text += f'\n[dashboard.map]\nbackground = "map.svg"\nbounds = {list(BOUNDS)}\n'
    gateway.config.write_text(text)
    gateway.start()
    return gateway


def rain(mosquitto: Mosquitto, value: float, seq: int) -> None:
    """One report of rg-01 from the firmware stub."""
    script = DeviceScript(
        id="rg-01",
        metrics=(MetricScript("rain_mm", ((0.0, value),), decimals=2),),
    )
    stub = run_device(
        script,
        station="test",
        host="127.0.0.1",
        port=mosquitto.port,
        interval_s=0.05,
        count=1,
        start_seq=seq,
    )
    # Playwright's sync API holds this thread's event loop: the stub runs in its own
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, stub).result() == 1


ERRORS: dict[int, list[str]] = {}  # script errors per page


def log_in(
    browser: Any,
    gw: Gateway,
    name: str,
    password: str,
    size: tuple[int, int],
    shot: Path | None = None,
) -> Any:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors = ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(gw.url + "/")
    page.locator("#login").wait_for(state="visible")
    if shot is not None:
        page.screenshot(path=str(shot))
    page.fill("#login input[name=name]", name)
    page.fill("#login input[name=password]", password)
    page.press("#login input[name=password]", "Enter")  # the keyboard submits
    page.locator("#conn-state[data-state=live]").wait_for()
    return page


def visit(page: Any, name: str, folder: Path, tag: str) -> None:
    page.evaluate(f"location.hash = '#{name}'")
    page.locator(f"body[data-page={name.split('/')[0]}]").wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(folder / f"{tag}-{name.replace('/', '-')}.png"), full_page=True)


def test_duty_officer_sees_live_data_hears_the_alarm_and_acknowledges(
    station: Gateway, mosquitto: Mosquitto, browser: Any, shots: Path
) -> None:
    gw = station
    password = add_user(gw.db, "zhao", "duty_officer")
    page = log_in(browser, gw, "zhao", password, (1920, 1080), shots / "login.png")
    assert page.locator("#who").inner_text().startswith("zhao")

    # a reading updates the overview live (no reload)
    cell = page.locator('[data-series="rg-01/rain_mm"] dd b')
    assert cell.inner_text() == "—"
    rain(mosquitto, 0.5, 1)
    page.wait_for_function(
        "document.querySelector('[data-series=\"rg-01/rain_mm\"] dd b').textContent === '0.50'"
    )

    # sound on, then a scripted crossing: the banner appears and the alarm sounds
    page.click("#sound")
    page.locator("body[data-audio=ready]").wait_for()
    assert page.locator("#banner").is_hidden()
    rain(mosquitto, 6.0, 2)  # yellow: 5 ≤ 6 < 8
    item = page.locator("#banner li").first
    item.wait_for()
    assert item.locator(".lv").get_attribute("data-level") == "yellow"
    wid = int(item.get_attribute("data-ticket"))
    page.wait_for_function("window.stationAlarm.plays >= 1 && window.stationAlarm.playing")
    assert page.locator("body").get_attribute("data-audio") == "playing"
    page.screenshot(path=str(shots / "duty-overview-alarm.png"))

    # muting one warning needs a reason
    item.locator("button.mute").click()
    page.locator("#ask").wait_for(state="visible")
    page.click("#ask-form button[value=ok]")
    assert page.locator("#ask-error").inner_text() != ""
    page.click("#ask-cancel")

    # the risk map: p1 in the warning's colour at its configured place, blinking
    visit(page, "map", shots, "duty")
    marker = page.locator('.marker[data-point="p1"]')
    assert marker.get_attribute("data-level") == "yellow"
    assert marker.get_attribute("data-blink") == "1"
    assert marker.evaluate("m => getComputedStyle(m).backgroundColor") == YELLOW
    # on the Leaflet map, over the configured background: the marker sits at p1's lon/lat
    page.locator("#map-box img.map-bg").wait_for()
    box, dot = page.locator("#map-box").bounding_box(), marker.bounding_box()
    at = page.evaluate(
        f"(() => {{ const p = window.stationMap.latLngToContainerPoint([{P1[1]}, {P1[0]}]); return [p.x, p.y]; }})()"
    )
    cx, cy = dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2
    assert abs(cx - (box["x"] + at[0])) <= 2 and abs(cy - (box["y"] + at[1])) <= 2
    # and inside the background's picture, 25 % from its left and top edges
    img = page.locator("#map-box img.map-bg").bounding_box()
    assert abs(cx - (img["x"] + 0.25 * img["width"])) <= 3
    assert abs(cy - (img["y"] + 0.25 * img["height"])) <= 3
    # every device is drawn beside its point, in its series' level colour
    dev = page.locator('.dev-marker[data-device="rg-01"]')
    assert dev.get_attribute("data-level") == "yellow"
    assert dev.evaluate("m => getComputedStyle(m).backgroundColor") == YELLOW
    assert page.locator('.dev-marker[data-device="rg-02"]').get_attribute("data-level") == "none"
    marker.click()
    assert "一号点" in page.locator("#map-detail h2").inner_text()
    page.screenshot(path=str(shots / "duty-map-detail.png"))

    # acknowledging from the page: the banner clears, the alarm stops, the timeline and
    # the API agree
    page.click(f'#banner li[data-ticket="{wid}"] button.ack')
    page.locator("#banner").wait_for(state="hidden")
    page.wait_for_function("!window.stationAlarm.playing")
    visit(page, f"tickets/{wid}", shots, "duty")
    page.locator('#ticket-detail .timeline li[data-kind="acknowledged"]').wait_for()
    assert (
        "zhao" in page.locator('#ticket-detail .timeline li[data-kind="acknowledged"]').inner_text()
    )
    with closing(gw.api("viewer")) as api:
        detail = api.get(f"/api/tickets/{wid}").json()
    assert detail["acknowledged_by"] == "zhao"
    assert [e["actor"] for e in detail["events"] if e["kind"] == "acknowledged"] == ["zhao"]
    visit(page, "map", shots, "duty-acknowledged")  # still yellow, no longer blinking
    page.locator('.marker[data-point="p1"][data-level="yellow"][data-blink="0"]').wait_for()

    # a POST without the CSRF token is refused, even with the session cookie
    status = page.evaluate(
        f"""fetch('/api/tickets/{wid}/ack', {{method: 'POST', credentials: 'same-origin',
            headers: {{'Content-Type': 'application/json'}}, body: '{{}}'}}).then(r => r.status)"""
    )
    assert status == 403

    # a handover from the duty page: the open items go with it into the history
    visit(page, "duty", shots, "duty-before-handover")
    page.fill("#handover input[name=to]", "钱值班")
    page.fill("#handover textarea[name=note]", "雨还在下，注意一号点")
    page.click("#handover button[type=submit]")
    page.locator("#handovers tbody tr").first.wait_for()
    row = page.locator("#handovers tbody tr").first.inner_text()
    assert "zhao" in row and "钱值班" in row and "雨还在下" in row
    # its printed record, and the monthly report, from the same page with the same session
    href = page.locator("#handovers tbody tr").first.locator("a").get_attribute("href")
    assert href is not None
    record = page.request.get(urljoin(page.url, href), timeout=120_000)  # href is relative
    assert record.status == 200 and record.body().startswith(b"%PDF")
    with page.expect_popup() as popup:
        page.click("#monthly button[value=html]")
    report = popup.value
    report.wait_for_load_state()
    assert "月度安全形势分析报告" in report.content()
    report.close()
    # every page once, for the eye
    for name in ("overview", "map", "tickets", "devices", "duty"):
        visit(page, name, shots, "duty")
    page.evaluate("location.hash = '#trends'")
    page.get_by_role("button", name="1小时").click()
    page.locator("#chart canvas").first.wait_for()
    page.screenshot(path=str(shots / "duty-trends.png"))
    page.click("#lang")
    visit(page, "overview", shots, "duty-en")
    assert page.locator("#nav a[href='#overview']").inner_text() == "Overview"
    assert page.locator("#conn-state").inner_text() == "Live"
    page.click("#lang")
    assert ERRORS[id(page)] == []


def test_a_viewer_sees_no_actions_and_is_refused_by_the_api(
    station: Gateway, mosquitto: Mosquitto, browser: Any, shots: Path
) -> None:
    gw = station
    rain(mosquitto, 9.0, 1)  # orange
    deadline = time.monotonic() + 10  # acknowledged (and so stored) within the group wait
    with closing(gw.api("viewer")) as api:
        while not (
            tickets := [t for t in api.get("/api/tickets").json() if t["kind"] == "warning"]
        ):
            assert time.monotonic() < deadline, "no warning"
            time.sleep(0.1)
    [warning] = tickets
    assert warning["level"] == "orange"
    page = log_in(browser, gw, "screen", add_user(gw.db, "screen", "viewer"), (1366, 768))
    page.locator("#banner li").first.wait_for()
    assert page.locator("#banner button").count() == 0  # no acknowledge, no mute
    assert "false" not in page.locator("#banner").inner_text()
    visit(page, f"tickets/{warning['id']}", shots, "viewer")
    page.locator("#ticket-detail h2").wait_for()
    assert page.locator("#ticket-detail [data-action]").count() == 0
    assert page.locator('#nav a[href="#rules"]').is_hidden()
    # the API says no too, with a valid session and CSRF token
    status = page.evaluate(
        """fetch('/api/session').then(r => r.json()).then(s => fetch('/api/tickets/ID/ack', {
            method: 'POST', headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': s.csrf}, body: '{}'})).then(r => r.status)""".replace(
            "ID", str(warning["id"])
        )
    )
    assert status == 403
    for name in ("overview", "map", "devices"):
        visit(page, name, shots, "viewer-1366")

    # the technician's rules page: a bad edit is shown inline, nothing saved
    tech = log_in(browser, gw, "sun", add_user(gw.db, "sun", "technician"), (1366, 768))
    visit(tech, "rules", shots, "tech")
    tech.locator("#rule-file option").first.wait_for(state="attached")
    # the rule holds rg-01 at orange now: its state beside it
    assert tech.locator('tr[data-rule=rain-burst] [data-series="rg-01/rain_mm"]').count() == 1
    assert "雨量计" in tech.locator("tr[data-rule=rain-burst]").inner_text()
    tech.fill("#rule-text", '[[rules]]\nid = "x"\nkind = "threshold"\n')
    tech.click("#rule-check")
    tech.locator("#rule-errors[data-ok='0'] li").first.wait_for()
    assert "name" in tech.locator("#rule-errors").inner_text()
    # at its line: the rule's [[rules]] header is line 1 of the edited text
    assert tech.locator('#rule-errors li[data-line="1"]').first.inner_text().startswith("第 1 行")
    tech.fill(
        "#rule-text",
        '[[rules]]\nid = "x"\nname = "水位"\nkind = "threshold"\nmetric = "level_m"\nabove = { blue = 1.0 }\n',
    )
    tech.click("#rule-check")
    # a rule on a metric no device reports is refused, at its line
    tech.locator('#rule-errors[data-ok="0"] li[data-line="1"]', has_text="level_m").wait_for()
    tech.screenshot(path=str(shots / "tech-rules-invalid.png"), full_page=True)
    tech.select_option("#rule-file", index=0)  # back to the file as it is
    tech.click("#replay-run")
    tech.locator("#replay-out table, #replay-out p").first.wait_for()
    tech.screenshot(path=str(shots / "tech-rules-replay.png"), full_page=True)

    # muting the warning with a reason silences it on every screen, until it is raised
    tech.click(f'#banner li[data-ticket="{warning["id"]}"] button.mute')
    tech.fill("#ask-form textarea", "村里已电话确认，正在转移")
    tech.click("#ask-form button[value=ok]")
    tech.locator("#banner").wait_for(state="hidden")
    page.locator("#banner").wait_for(state="hidden")  # the viewer's screen too (SSE)
    rain(mosquitto, 13.0, 2)  # red: the same warning, raised
    tech.locator('#banner li .lv[data-level="red"]').wait_for()
    assert ERRORS[id(page)] == [] and ERRORS[id(tech)] == []


def test_a_throttled_group_robot_is_shown_on_the_page(
    gateway: Gateway, mosquitto: Mosquitto, browser: Any, shots: Path
) -> None:
    """A WeCom robot whose service answers "too fast" (45009): the duty page names the
    group and says its messages are queued and merged."""
    hits: list[bytes] = []

    class Busy(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            hits.append(self.rfile.read(int(self.headers["Content-Length"])))
            data = b'{"errcode": 45009, "errmsg": "api freq out of limit"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=k1"
        gateway.config.write_text(
            gateway.config.read_text()
            + f'\n[[notify.robots]]\nid = "wx"\nname = "一村防汛群"\nkind = "wecom"\nurl = "{url}"\n'
        )
        gateway.start()
        rain(mosquitto, 9.0, 1)  # orange: the warning goes to the group robot
        page = log_in(
            browser, gateway, "duty", add_user(gateway.db, "duty", "duty_officer"), (1366, 768)
        )
        page.locator("#channels-down:not([hidden])").wait_for(timeout=30_000)
        text = page.locator("#channels-down").inner_text()
        assert text.startswith("群机器人 一村防汛群：限流中，消息排队合并发送")
        page.screenshot(path=str(shots / "robot-throttled.png"), full_page=True)
        assert hits and "一号点" in hits[0].decode()
        assert ERRORS[id(page)] == []
    finally:
        server.shutdown()
        server.server_close()
