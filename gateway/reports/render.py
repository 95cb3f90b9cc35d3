"""The reports as HTML: Jinja2 templates (autoescaped), Chinese, the station and period
in every page's running header; charts inline as SVG."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from gateway.config.station import Config
from gateway.reports.handover import Handover
from gateway.reports.loop import LEVELS
from gateway.reports.monthly import Monthly
from gateway.reports.narrative import dur, pct
from gateway.tickets.summary import CHANNEL_ZH, OUTCOME_ZH
from rules.reasons import ZH_FAULT, ZH_LEVEL

ZH_GRID = {
    "point": "监测点",
    "group": "村民小组",
    "village": "村",
    "township": "乡镇",
    "county": "县",
    "duty": "值班员",
}
STAGES = (
    ("confirm", "发现→确认"),
    ("control", "确认→管控"),
    ("rectify", "管控→整改"),
    ("close", "整改→核销"),
)


def css_string(text: object) -> Markup:
    """A CSS string literal for `content:` in the page margin boxes; safe inside <style>
    (no quote, backslash, newline or `<` left unescaped)."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return Markup('"' + s.replace("<", "\\3C ") + '"')


def _mm(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} mm"


def _metres(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} m"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:g}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, dur=dur, mm=_mm, metres=_metres, num=_num, css_string=css_string)
    env.globals.update(zh_level=ZH_LEVEL, zh_grid=ZH_GRID, zh_fault=ZH_FAULT, levels=LEVELS)
    env.globals.update(zh_channel={**CHANNEL_ZH, "api": "值班室页面"}, zh_outcome=OUTCOME_ZH)
    return env


def monthly_html(m: Monthly, cfg: Config) -> str:
    # matplotlib (and numpy) cost the running gateway ~45 MB when imported at start-up:
    # loaded only when a monthly report is made
    from gateway.reports import charts

    names = {p.id: p.name for p in cfg.points}
    days = m.period.days()
    return (
        environment()
        .get_template("monthly.html")
        .render(
            m=m,
            station=m.station,
            title="月度安全形势分析报告",
            period_label=m.period.label,
            page_size="A4",
            stages=STAGES,
            stale_factor=cfg.health.stale_factor,
            point_name=lambda pid: names.get(pid, pid),
            charts={
                "warnings": charts.warnings_by_level(m.warnings.by_type),
                "ack_level": charts.ack_times(
                    {ZH_LEVEL[lv]: m.calls.by_level[lv] for lv in LEVELS}, "按预警级别"
                ),
                "ack_grid": charts.ack_times(
                    {ZH_GRID.get(g, g): s for g, s in m.calls.by_grid.items()}, "按网格层级"
                ),
                "rain": charts.rainfall(m.rain, days, m.storm_day_mm),
                "water": charts.water_levels(m.water, days),
                "crack": charts.cracks(m.crack, days),
                "devices": charts.availability(m.devices),
            },
        )
    )


def _local(zone: ZoneInfo) -> Any:
    def fmt(ms: int | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        if ms is None:
            return ""
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime(pattern)

    return fmt


def handover_html(h: Handover, cfg: Config) -> str:
    zone = ZoneInfo(cfg.station.timezone)
    local = _local(zone)
    return (
        environment()
        .get_template("handover.html")
        .render(
            h=h,
            station=cfg.station.name,
            title="值班交接班记录",
            period_label=f"{local(h.at)} 交接",
            page_size="A4",
            local=local,
        )
    )


def ledger_html(table: list[list[Any]], headers: tuple[str, ...], cfg: Config, span: str) -> str:
    return (
        environment()
        .get_template("ledger.html")
        .render(
            rows=table,
            headers=headers,
            station=cfg.station.name,
            title="隐患台账",
            period_label=span,
            page_size="A4 landscape",
            body_width="270mm",
        )
    )
