"""The county page with a county's worth of townships, in Debian's Chromium: 200
stations (tests/county_data.py's five and 195 generated, 4 points and 8 devices each),
42 warnings in force. The duty officer's overview lists every warning; the fleet table
has a row per station; the map a marker per station that reported where it is; the wall
screen at 1920×1080 does not scroll and shows only whole cards; no id, None or English
on any of them. How long the overview and the map take is printed, not asserted."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gateway.county import users
from gateway.county.config import CountyConfig
from tests.county_data import COUNTY, fill, fill_many, many
from tests.county_pg import migrate, postgres
from tests.integration.test_browser import browser, shots  # noqa: F401
from tests.integration.test_browser_county import PASSWORD, audit, log_in
from tests.integration.test_county_plan_page import serving

pytestmark = pytest.mark.integration

MORE = many(195)


@pytest.fixture
def county() -> Iterator[tuple[str, int]]:
    """The county app over 200 stations; its URL and how many warnings are in force."""
    now = int(time.time() * 1000)
    with postgres() as dsn:
        at = datetime.fromtimestamp(now / 1000, UTC)
        migrate(dsn, tuple(at - timedelta(days=d) for d in range(0, 70, 5)))
        stations = COUNTY["stations"] + [{"id": i, "name": n} for i, n in MORE]
        cfg = CountyConfig.model_validate({**COUNTY, "stations": stations})
        with psycopg.connect(dsn, autocommit=True) as conn:
            fill(conn, now)
            generated = fill_many(conn, now, MORE)
            users.add_user(conn, "wang", "duty_officer", PASSWORD, "wang", now)
            users.add_user(conn, "screen", "viewer", PASSWORD, None, now)
        with serving(cfg, dsn) as url:
            yield url, 3 + generated  # 溪口镇's red, 山尾乡's orange, 东岭镇's yellow


def clean(page: Any) -> list[str]:
    """What `audit` finds, and any generated station id (t000 …) on the page."""
    return audit(page, "zh") + re.findall(r"\bt\d{3}\b", page.locator("body").inner_text())


def test_two_hundred_townships_on_the_county_page(
    county: tuple[str, int],
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    url, in_force = county
    assert in_force == 42
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/api/login", json={"name": "wang", "password": PASSWORD}).is_success
        started = time.monotonic()
        ov = c.get("/api/overview").json()
        everything = c.get("/api/map").json()
        mapped, points = everything["stations"], everything["points"]
        print(
            f"\nGET /api/overview with 200 stations: {(time.monotonic() - started) * 1000:.0f} ms"
        )
    assert len(ov["warnings"]) == in_force and len(ov["fleet"]) == 200

    started = time.monotonic()
    page = log_in(browser, url, "wang", (1920, 1080))
    cards = page.locator("#warnings .warn-card")
    page.wait_for_function(
        f"document.querySelectorAll('#warnings .warn-card').length === {in_force}"
    )
    print(f"log-in to {in_force} warning cards: {(time.monotonic() - started) * 1000:.0f} ms")
    assert cards.first.get_attribute("data-level") == "red"
    page.screenshot(path=str(shots / "county200-overview.png"))
    assert clean(page) == []

    page.evaluate("location.hash = '#fleet'")
    page.locator("body[data-page=fleet]").wait_for()
    page.wait_for_function(
        "document.querySelectorAll('#fleet-table tr[data-station]').length === 200"
    )
    page.screenshot(path=str(shots / "county200-fleet.png"), full_page=True)
    assert clean(page) == []

    started = time.monotonic()
    page.evaluate("location.hash = '#map'")
    page.locator("body[data-page=map]").wait_for()
    page.wait_for_function("document.querySelectorAll('.st-marker').length >= 199")
    print(f"map with its station markers: {(time.monotonic() - started) * 1000:.0f} ms")
    markers = page.locator(".st-marker").count()
    assert markers == 199, markers  # 北山乡 never said where it is
    # named on the map: only the stations that need someone (a warning, offline), and
    # no point that is quiet; the others say their name on hover
    named = {s["name"] for s in mapped if s["level"] or not s["online"]}
    labels = set(page.locator(".leaflet-tooltip-pane .map-label").all_inner_texts())
    assert labels == named and len(named) < 60, (len(labels), len(named))
    assert page.locator(".pt-marker").count() == len([p for p in points if p["level"]])
    page.screenshot(path=str(shots / "county200-map.png"))
    assert page.errors == []
    page.close()

    wall = log_in(browser, url, "screen", (1920, 1080), "/screen")
    wall.locator("#scr-warnings .warn-card").first.wait_for()
    wall.wait_for_load_state("networkidle")
    more = wall.locator("#scr-warnings .more").inner_text()
    m = re.fullmatch(r"另有 (\d+) 条预警（级别较低或已应答）未显示，见总览", more)
    assert m is not None, more
    shown = wall.locator("#scr-warnings .warn-card:visible").count()
    assert shown >= 3 and shown + int(m[1]) == in_force
    assert wall.evaluate(
        """() => { const b = document.querySelector('#scr-warnings').getBoundingClientRect().bottom;
           return [...document.querySelectorAll('#scr-warnings .warn-card')]
             .filter((c) => !c.hidden).every((c) => c.getBoundingClientRect().bottom <= b + 1); }"""
    )
    assert wall.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
    wall.screenshot(path=str(shots / "county200-wall.png"))
    assert clean(wall) == []
    assert wall.errors == []
