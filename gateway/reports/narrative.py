"""Month-on-month changes and the report's short Chinese summary, from the figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.model import Level
from gateway.reports.loop import LEVELS

if TYPE_CHECKING:
    from gateway.reports.monthly import Monthly


@dataclass(frozen=True, slots=True)
class Headline:
    """The figures compared month on month."""

    warnings: int
    warnings_high: int  # orange and red
    hazards_opened: int
    hazards_closed: int
    closure_rate: float | None
    overdue: int
    median_ack_s: float | None
    escalations: int
    rain_max_total_mm: float | None
    storm_days: int  # local days on which any gauge reached the storm line
    uptime: float | None
    completeness: float | None
    patrol_records: int
    patrol_completion: float | None


@dataclass(frozen=True, slots=True)
class Change:
    label: str
    now: str
    before: str
    delta: str  # "+3", "−2.5 个百分点", "持平", ""


ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def dur(s: float | None) -> str:
    """Seconds as 分/秒 text."""
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.0f}秒"
    if s < 3600:
        m, sec = divmod(round(s), 60)
        return f"{m}分{sec:02d}秒" if sec else f"{m}分钟"
    h, rest = divmod(round(s), 3600)
    return f"{h}小时{rest // 60:02d}分"


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:g}{unit}" if isinstance(x, int) else f"{x:.1f}{unit}"


def _count_delta(now: float | None, before: float | None, unit: str = "") -> str:
    if now is None or before is None:
        return ""
    d = now - before
    if abs(d) < 1e-9:
        return "持平"
    text = f"{abs(d):g}" if float(d).is_integer() else f"{abs(d):.1f}"
    return f"{'+' if d > 0 else '−'}{text}{unit}"


def _pct_delta(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    d = (now - before) * 100
    if abs(d) < 0.05:
        return "持平"
    return f"{'+' if d > 0 else '−'}{abs(d):.1f}个百分点"


def changes(h: Headline, b: Headline | None) -> list[Change]:
    def row(label: str, now: float | None, before: float | None, kind: str) -> Change:
        if kind == "pct":
            return Change(label, pct(now), pct(before) if b else "—", _pct_delta(now, before))
        if kind == "dur":
            return Change(
                label, dur(now), dur(before) if b else "—", _count_delta(now, before, "秒")
            )
        if kind == "mm":
            return Change(
                label,
                _num(now, " mm"),
                _num(before, " mm") if b else "—",
                _count_delta(now, before, " mm"),
            )
        shown_b = "—" if b is None or before is None else f"{before:g}"
        return Change(
            label, f"{now:g}" if now is not None else "—", shown_b, _count_delta(now, before)
        )

    def prev(name: str) -> float | None:
        return getattr(b, name) if b is not None else None

    return [
        row("发布预警（次）", h.warnings, prev("warnings"), "n"),
        row("其中橙色、红色（次）", h.warnings_high, prev("warnings_high"), "n"),
        row("新增隐患（件）", h.hazards_opened, prev("hazards_opened"), "n"),
        row("核销隐患（件）", h.hazards_closed, prev("hazards_closed"), "n"),
        row("隐患办结率", h.closure_rate, prev("closure_rate"), "pct"),
        row("超期（件）", h.overdue, prev("overdue"), "n"),
        row("叫应响应时长中位数", h.median_ack_s, prev("median_ack_s"), "dur"),
        row("督导升级（次）", h.escalations, prev("escalations"), "n"),
        row("单站最大月雨量", h.rain_max_total_mm, prev("rain_max_total_mm"), "mm"),
        row("暴雨日（天）", h.storm_days, prev("storm_days"), "n"),
        row("设备平均在线率", h.uptime, prev("uptime"), "pct"),
        row("数据完整率", h.completeness, prev("completeness"), "pct"),
        row("巡查记录（份）", h.patrol_records, prev("patrol_records"), "n"),
        row("巡查清单完成率", h.patrol_completion, prev("patrol_completion"), "pct"),
    ]


def _more_less(now: float, before: float, unit: str) -> str:
    d = now - before
    if abs(d) < 1e-9:
        return "与上月持平"
    amount = f"{abs(d):g}" if float(d).is_integer() else f"{abs(d):.1f}"
    return f"较上月{'增加' if d > 0 else '减少'}{amount}{unit}"


def summary(m: Monthly) -> list[str]:
    """A few sentences on the month and what changed since the last."""
    h, b = m.headline, m.previous
    out: list[str] = []
    levels = "、".join(
        f"{ZH[lv]}{m.warnings.by_level[lv]}次" for lv in reversed(LEVELS) if m.warnings.by_level[lv]
    )
    text = f"本月共发布预警{h.warnings}次" + (f"（{levels}）" if levels else "")
    if b is not None:
        text += "，" + _more_less(h.warnings, b.warnings, "次")
    out.append(text + "。")
    rain = max(m.rain, key=lambda g: g.total_mm, default=None)
    if rain is not None and rain.total_mm > 0:
        text = f"最大月雨量出现在{rain.name}（{rain.total_mm:.1f} mm）"
        if m.storm_days:
            days = "、".join(f"{d.day}日" for d in m.storm_days)
            text += f"；日雨量达{m.storm_day_mm:g} mm以上的暴雨日{len(m.storm_days)}天（{days}）"
        else:
            text += "；无暴雨日"
        if b is not None:
            text += f"，暴雨日{_more_less(h.storm_days, b.storm_days, '天')}"
        out.append(text + "。")
    text = f"新增隐患{h.hazards_opened}件，核销{h.hazards_closed}件，办结率{pct(h.closure_rate)}"
    if h.overdue:
        text += f"，{h.overdue}件超期"
    if b is not None and h.closure_rate is not None and b.closure_rate is not None:
        text += f"，办结率较上月{_pct_delta(h.closure_rate, b.closure_rate)}".replace(
            "较上月持平", "与上月持平"
        )
    out.append(text + "。")
    if m.calls.rounds:
        text = (
            f"叫应{m.calls.rounds}轮，回应{m.calls.acknowledged}轮，响应时长中位数"
            f"{dur(h.median_ack_s)}；督导升级{h.escalations}次"
        )
        if m.calls.escalated_past:
            name, n = m.calls.escalated_past[0]
            text += f"，未及时回应最多的是{name}（{n}次）"
        if b is not None and h.median_ack_s is not None and b.median_ack_s is not None:
            a, c = h.median_ack_s, b.median_ack_s
            than = "快于" if a < c else "慢于" if a > c else "同于"
            text += f"，响应{than}上月（{dur(c)}）"
        out.append(text + "。")
    worst = min(
        (a for a in m.devices if a.uptime is not None), key=lambda a: a.uptime or 0.0, default=None
    )
    if worst is not None:
        text = f"设备平均在线率{pct(h.uptime)}，数据完整率{pct(h.completeness)}"
        if worst.longest is not None:
            longest = dur(worst.longest.ms / 1000)
            text += f"；{worst.name}在线率最低（{pct(worst.uptime)}），最长中断{longest}"
        out.append(text + "。")
    if m.patrols:
        text = f"巡查记录{h.patrol_records}份，清单完成率{pct(h.patrol_completion)}"
        if b is not None:
            text += "，巡查" + _more_less(h.patrol_records, b.patrol_records, "份")
        out.append(text + "。")
    return out
