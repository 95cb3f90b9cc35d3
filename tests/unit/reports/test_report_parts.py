"""The reports' small pure parts: outages, percentiles, CSS strings, charts without a CJK
font, the Chromium lookup, and the HTTP router on a scripted month's database."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.core.model import Level
from gateway.reports import charts, pdf
from gateway.reports.loop import stats
from gateway.reports.narrative import dur
from gateway.reports.render import css_string
from gateway.reports.sensors import Outage, outages


def silences(stamps: list[int], anchor: int | None, limit: float) -> list[Outage]:
    """outages() fed as the report's SQL feeds it: first, last and the long gaps."""
    gaps = [(a, b) for a, b in pairwise(stamps) if b - a > limit]
    first, last = (stamps[0], stamps[-1]) if stamps else (None, None)
    return outages(first, last, gaps, anchor, 0, 100, limit)


def test_outages_are_gaps_longer_than_the_limit_clipped_to_the_period() -> None:
    # reports every 10 ms, a 45 ms silence, the period [0, 100); limit 30
    assert silences([0, 10, 20, 65, 75, 85, 95], None, 30) == [Outage(20, 65)]
    # silent since before the period began: the silence starts at the period's start
    assert silences([50, 60], -40, 30) == [Outage(0, 50), Outage(60, 100)]
    assert silences([50, 60], 20, 30) == [Outage(60, 100)]  # the anchor is near enough
    assert silences([], None, 30) == [Outage(0, 100)]
    assert silences([], 90, 30) == []  # reported just before the period's end
    assert silences([0, 25, 50, 75], None, 30) == []


def test_stats_median_and_nearest_rank_p90() -> None:
    s = stats([1000 * x for x in range(1, 11)])
    assert (s.n, s.median_s, s.p90_s) == (10, 5.5, 9.0)
    assert stats([]).median_s is None
    assert stats([7000]).p90_s == 7.0


def test_durations_in_chinese() -> None:
    assert [dur(x) for x in (None, 42, 509, 600, 43500)] == [
        "—",
        "42秒",
        "8分29秒",
        "10分钟",
        "12小时05分",
    ]


def test_css_string_cannot_leave_the_string_or_the_style_element() -> None:
    assert css_string('清水镇 "站"\\ </style><b>') == '"清水镇 \\"站\\"\\\\ \\3C /style>\\3C b>"'


def test_charts_without_a_cjk_font_raise_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    charts._families.cache_clear()
    monkeypatch.setattr(charts, "CJK_FONTS", ())
    try:
        svg = charts.warnings_by_level({"小时雨量": {Level.YELLOW: 2, Level.ORANGE: 1}})
    finally:
        charts._families.cache_clear()
    assert svg.startswith("<svg") and "小时雨量" in svg  # text stays text for the browser
    assert "<?xml" not in svg


def test_pdf_needs_chromium_and_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("STATIONGW_CHROMIUM", raising=False)
    with pytest.raises(pdf.PdfError, match="apt-get install chromium fonts-noto-cjk"):
        pdf.html_to_pdf("<p>x</p>")
    monkeypatch.setenv("STATIONGW_CHROMIUM", str(tmp_path / "nope"))
    with pytest.raises(pdf.PdfError, match="STATIONGW_CHROMIUM"):
        pdf.find_chromium()


class Client:
    """GETs through the ASGI app in this process (httpx's ASGI transport)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://report") as c:
                return await c.get(path, params=params)

        return asyncio.run(go())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Client:
    from gateway.http.reports import router
    from tests.unit.reports.report_month import build

    m = build(tmp_path_factory.mktemp("http"))
    m.store.close()
    app = FastAPI()
    ctx: Any = SimpleNamespace(config=m.cfg, db_path=m.cfg.database.path)
    app.include_router(router(ctx))
    return Client(app)


def test_http_monthly_report_as_html(client: Client) -> None:
    r = client.get("/api/reports/monthly", params={"month": "2026-07"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'filename="monthly-qs-2026-07.html"' in r.headers["content-disposition"]
    assert "清水镇应急管理站" in r.text and "2026年7月安全形势分析报告" in r.text
    assert r.text.count("<svg") == 7


def test_http_rejects_a_bad_month(client: Client) -> None:
    assert client.get("/api/reports/monthly", params={"month": "July"}).status_code == 422
    r = client.get("/api/reports/monthly", params={"month": "2026-13"})
    assert r.status_code == 422 and "YYYY-MM" in r.json()["detail"]


def test_http_handover_record(client: Client) -> None:
    r = client.get("/api/reports/handovers/1")
    assert r.status_code == 200 and "赵敏" in r.text and "钱鹏" in r.text
    assert client.get("/api/reports/handovers/99").status_code == 404


def test_http_monthly_report_as_pdf(client: Client) -> None:
    r = client.get("/api/reports/monthly", params={"month": "2026-07", "format": "pdf"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
