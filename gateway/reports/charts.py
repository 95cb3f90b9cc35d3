"""The monthly report's charts: matplotlib figures as inline SVG.

Text stays text (`svg.fonttype = "none"`): the browser — and Chromium printing the PDF —
draws it with the system's CJK fonts (Debian's fonts-noto-cjk). For its own layout,
matplotlib measures with the first CJK font it finds; without one it measures with
DejaVu Sans, and its missing-glyph warnings are caught here (the text is drawn by the
browser, so they would only say that widths are estimated).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from functools import cache
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gateway.core.model import Level
from gateway.reports.loop import LEVELS, Stats
from gateway.reports.sensors import Availability, CrackMeter, RainGauge, WaterGauge

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
COLOUR = {
    Level.BLUE: "#1f6fd1",
    Level.YELLOW: "#e0b000",
    Level.ORANGE: "#f07800",
    Level.RED: "#d42020",
}
ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
PALETTE = ("#2b6cb0", "#2f855a", "#c05621", "#6b46c1", "#b83280", "#718096")


@cache
def _families() -> tuple[str, ...]:
    known = {f.name for f in font_manager.fontManager.ttflist}
    return (*[f for f in CJK_FONTS if f in known], "DejaVu Sans")


@contextmanager
def _style() -> Iterator[None]:
    with (
        matplotlib.rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "stationgw",  # stable element ids: the same data, the same SVG
                "font.family": list(_families()),
                "font.size": 9,
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.unicode_minus": False,
            }
        ),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
        yield


def _legend(fig: Figure, **kw: Any) -> None:
    """The figure's legend, when something in it has a label (an empty month has none,
    and matplotlib warns about a legend with nothing in it)."""
    if any(ax.get_legend_handles_labels()[0] for ax in fig.axes):
        fig.legend(**kw)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: no XML declaration or doctype


def _figure(w: float = 7.0, h: float = 2.6) -> Figure:
    return Figure(figsize=(w, h), layout="constrained")


def warnings_by_level(by_type: dict[str, dict[Level, int]]) -> str:
    """Stacked bars: warnings of each type, by level."""
    with _style():
        fig = _figure(7.0, max(1.6, 0.45 * len(by_type) + 0.9))
        ax = fig.add_subplot()
        names = list(by_type) or ["（无）"]
        left = [0] * len(names)
        for lv in LEVELS:
            counts = [by_type.get(n, {}).get(lv, 0) for n in names]
            ax.barh(names, counts, left=left, color=COLOUR[lv], label=ZH[lv], height=0.6)
            left = [a + b for a, b in zip(left, counts, strict=True)]
        ax.invert_yaxis()
        ax.set_xlabel("预警次数")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _legend(fig, ncols=4, loc="outside upper right", frameon=False, fontsize=8)
        return _svg(fig)


def rainfall(gauges: Sequence[RainGauge], days: Sequence[date], storm_mm: float) -> str:
    with _style():
        fig = _figure()
        ax = fig.add_subplot()
        n = max(1, len(gauges))
        width = 0.8 / n
        for i, g in enumerate(gauges):
            xs = [d.day + (i - (n - 1) / 2) * width for d in days]
            ax.bar(xs, g.daily, width=width, color=PALETTE[i % len(PALETTE)], label=g.name)
        ax.axhline(storm_mm, color=COLOUR[Level.RED], lw=1, ls="--")
        ax.text(
            days[-1].day + 0.5,
            storm_mm,
            f" 暴雨 {storm_mm:g} mm",
            va="bottom",
            ha="right",
            color=COLOUR[Level.RED],
            fontsize=8,
        )
        ax.set_xlim(0.4, days[-1].day + 0.6)
        ax.set_xticks([d.day for d in days if d.day == 1 or d.day % 5 == 0])
        ax.set_xlabel("日")
        ax.set_ylabel("日雨量 (mm)")
        if gauges:
            _legend(fig, ncols=len(gauges), loc="outside upper right", frameon=False, fontsize=8)
        return _svg(fig)


def water_levels(gauges: Sequence[WaterGauge], days: Sequence[date]) -> str:
    with _style():
        fig = _figure()
        ax = fig.add_subplot()
        drawn: set[tuple[Level, float]] = set()
        for i, g in enumerate(gauges):
            pts = [(d.day, v) for d, v in zip(days, g.daily_max, strict=True) if v is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    marker="o",
                    ms=2.5,
                    lw=1.2,
                    color=PALETTE[i % len(PALETTE)],
                    label=f"{g.name} 日最高",
                )
            for lv, limit in g.lines:
                if (lv, limit) not in drawn:
                    drawn.add((lv, limit))
                    ax.axhline(limit, color=COLOUR[lv], lw=0.9, ls="--")
                    ax.text(
                        days[-1].day + 0.5,
                        limit,
                        f"{ZH[lv]} {limit:g} m",
                        va="bottom",
                        ha="right",
                        color=COLOUR[lv],
                        fontsize=7,
                    )
        ax.set_xlim(0.4, days[-1].day + 0.6)
        ax.set_xlabel("日")
        ax.set_ylabel("水位 (m)")
        if gauges:
            _legend(fig, ncols=len(gauges), loc="outside upper right", frameon=False, fontsize=8)
        return _svg(fig)


def cracks(meters: Sequence[CrackMeter], days: Sequence[date]) -> str:
    with _style():
        fig = _figure(7.0, 2.2)
        ax = fig.add_subplot()
        for i, m in enumerate(meters):
            pts = [(d.day, v) for d, v in zip(days, m.daily, strict=True) if v is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    marker="o",
                    ms=2.5,
                    lw=1.2,
                    color=PALETTE[i % len(PALETTE)],
                    label=m.name,
                )
        ax.set_xlim(0.4, days[-1].day + 0.6)
        ax.set_xlabel("日")
        ax.set_ylabel("累计位移 (mm)")
        if meters:
            _legend(fig, ncols=len(meters), loc="outside upper right", frameon=False, fontsize=8)
        return _svg(fig)


def availability(devices: Sequence[Availability]) -> str:
    shown = [a for a in devices if a.uptime is not None]
    with _style():
        fig = _figure(7.0, max(1.4, 0.32 * len(shown) + 0.8))
        ax = fig.add_subplot()
        names = [a.name for a in shown] or ["（无）"]
        up = [100 * (a.uptime or 0.0) for a in shown] or [0.0]
        full = [100 * (a.completeness or 0.0) for a in shown] or [0.0]
        ys = range(len(names))
        ax.barh([y - 0.18 for y in ys], up, height=0.36, color="#2f855a", label="在线率")
        ax.barh([y + 0.18 for y in ys], full, height=0.36, color="#a0aec0", label="数据完整率")
        ax.set_yticks(list(ys), names)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("%")
        _legend(fig, ncols=2, loc="outside upper right", frameon=False, fontsize=8)
        return _svg(fig)


def ack_times(by: dict[str, Stats], title: str) -> str:
    with _style():
        fig = _figure(3.4, 2.2)
        ax = fig.add_subplot()
        names = list(by) or ["（无）"]
        med = [(by[n].median_s or 0) / 60 if n in by else 0 for n in names]
        p90 = [(by[n].p90_s or 0) / 60 if n in by else 0 for n in names]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], med, width=0.4, color="#2b6cb0", label="中位数")
        ax.bar([x + 0.2 for x in xs], p90, width=0.4, color="#90cdf4", label="P90")
        ax.set_xticks(list(xs), names)
        ax.set_ylabel("分钟")
        ax.set_title(title, fontsize=9, loc="left")
        _legend(fig, ncols=2, loc="outside upper right", frameon=False, fontsize=7)
        return _svg(fig)
