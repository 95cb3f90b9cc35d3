"""Human-readable reasons for transitions, in Chinese and in English."""

from __future__ import annotations

from gateway.core.model import Level
from rules.durations import format_duration

ZH_LEVEL = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
ZH_DURATION = {"m": "分钟", "h": "小时", "d": "天", "s": "秒"}
ZH_FAULT = {
    "range": "超出传感器量程",
    "stuck": "数值长时间不变（疑似卡滞）",
    "jump": "数值突变超出物理可能",
    "low_supply": "供电/电池电压过低",
    "no_data": "长时间无数据（离线）",
}
EN_FAULT = {
    "range": "outside the sensor's physical range",
    "stuck": "value stuck",
    "jump": "impossible jump",
    "low_supply": "supply or battery low",
    "no_data": "no data (offline)",
}


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}"


def zh_duration(ms: int) -> str:
    text = format_duration(ms)
    return text[:-1] + ZH_DURATION.get(text[-1], text[-1])


def level_reason(
    what_zh: str,
    what_en: str,
    value: float,
    unit: str,
    level: Level | None,
    limit: float | None,
    direction: str,
) -> tuple[str, str]:
    u = f" {unit}" if unit else ""
    op = "≥" if direction == "above" else "≤"
    if level is None or limit is None:
        return (
            f"{what_zh} {_num(value)}{u}，已低于各级阈值"
            if direction == "above"
            else f"{what_zh} {_num(value)}{u}，已回到各级阈值以内",
            f"{what_en} {_num(value)}{u}, back within every threshold",
        )
    return (
        f"{what_zh} {_num(value)}{u} {op} {ZH_LEVEL[level]}阈值 {_num(limit)}{u}",
        f"{what_en} {_num(value)}{u} {op} {level.label} threshold {_num(limit)}{u}",
    )


def fault_reason(
    fault: str, metric: str, value: float | None, active: bool, detail: str
) -> tuple[str, str]:
    v = "" if value is None else f" {_num(value)}"
    if active:
        return (
            f"{metric}{v}：{ZH_FAULT.get(fault, fault)}（{detail}）",
            f"{metric}{v}: {EN_FAULT.get(fault, fault)} ({detail})",
        )
    return (
        f"{metric}{v}：{ZH_FAULT.get(fault, fault)}已恢复",
        f"{metric}{v}: {EN_FAULT.get(fault, fault)} cleared",
    )
