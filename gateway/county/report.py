"""The county monthly report as a document (HTML, and PDF through headless Chromium),
the same way as the station's (gateway/reports): its page template, its charts, its
printing; the figures are `views.monthly`'s, per township."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from gateway.county.config import CountyConfig

LEVELS = ("red", "orange", "yellow", "blue")
ZH_LEVEL = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


@cache
def environment() -> Environment:
    from gateway.reports.narrative import dur
    from gateway.reports.render import css_string

    env = Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("gateway.county", "templates"),
                PackageLoader("gateway.reports", "templates"),
            ]
        ),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(css_string=css_string, dur=dur)
    env.globals.update(zh_level=ZH_LEVEL, levels=LEVELS)
    return env


def summary(r: dict[str, Any]) -> list[str]:
    """The month in sentences (the page says the same)."""
    tot = r["total"]
    n = sum(tot["warnings"].values())
    out = [
        f"本月各乡镇共发布预警 {n} 次（红色 {tot['warnings']['red']} 次、橙色 "
        f"{tot['warnings']['orange']} 次），乡镇应答 {tot['answered']} 次，督导到县 "
        f"{tot['escalated']} 次；发现隐患 {tot['hazards']} 处、核销 {tot['hazards_closed']} 处；"
        f"设备故障 {tot['faults']} 次。"
    ]
    escalated = [t["name"] for t in r["townships"] if t["escalated"]]
    if escalated:
        out.append(f"有预警督导到县的乡镇：{'、'.join(escalated)}。")
    quiet = [t["name"] for t in r["townships"] if not t["readings"]]
    if quiet:
        out.append(f"本月未收到监测数据的乡镇：{'、'.join(quiet)}，请核查站点上报。")
    return out


def report_html(cfg: CountyConfig, r: dict[str, Any], now: int) -> str:
    from gateway.core.model import Level
    from gateway.reports import charts

    year, month = (int(x) for x in r["month"].split("-"))
    tz = ZoneInfo(cfg.county.timezone)
    by_level = {lv: Level[lv.upper()] for lv in LEVELS}
    chart = charts.warnings_by_level(
        {t["name"]: {by_level[lv]: t["warnings"][lv] for lv in LEVELS} for t in r["townships"]}
    )
    prev = r.get("previous")
    rows = [
        ("预警（次）", sum(r["total"]["warnings"].values()), _sum(prev)),
        (
            "红色预警（次）",
            r["total"]["warnings"]["red"],
            prev["warnings"]["red"] if prev else None,
        ),
        ("乡镇应答（次）", r["total"]["answered"], prev["answered"] if prev else None),
        ("督导到县（次）", r["total"]["escalated"], prev["escalated"] if prev else None),
        ("隐患发现（处）", r["total"]["hazards"], prev["hazards"] if prev else None),
        ("设备故障（次）", r["total"]["faults"], prev["faults"] if prev else None),
    ]
    return (
        environment()
        .get_template("county_monthly.html")
        .render(
            r={**r, "month_label": f"{year}年{month}月"},
            station=r["county"],
            title="各乡镇月度安全形势分析报告",
            period_label=f"{year}年{month}月",
            page_size="A4 landscape",
            body_width="270mm",
            tz=cfg.county.timezone,
            generated=datetime.fromtimestamp(now / 1000, UTC)
            .astimezone(tz)
            .strftime("%Y-%m-%d %H:%M"),
            summary=summary(r),
            changes=rows,
            chart=chart,
        )
    )


def _sum(prev: dict[str, Any] | None) -> int | None:
    return sum(prev["warnings"].values()) if prev else None
