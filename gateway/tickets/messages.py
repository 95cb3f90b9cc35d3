"""Warning messages in Chinese, per channel and level (pure): who is warned, which point
and village, the level, the reading that caused it, what the plan says to do at that
level, and how to answer (reply code, "按1确认"). Templates and limits come from the
station file (`[notify.templates]`, `[notify.plan]`, `[notify.limits]`); placeholders are
replaced with `str.replace`, so a template cannot reach attributes as `str.format` could.

A text over its channel's limit loses, in this order, the reading, the village and the
plan before anything is cut; the answer instruction is never cut: a message that does
not say how to answer is useless to the person and to the loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.model import Level

LEVEL_ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}

# what the township's plan (预案) asks of the responsible people at each level
DEFAULT_PLAN: Mapping[str, str] = {
    "blue": "加强巡查，密切关注雨情水情",
    "yellow": "加密巡查，做好人员转移准备",
    "orange": "立即组织危险区人员准备转移，禁止进入危险区",
    "red": "立即组织危险区人员转移撤离",
}

DEFAULT_TEMPLATES: Mapping[str, str] = {
    # one UCS2 segment holds 70 characters: see `DEFAULT_LIMITS`
    "sms": "【{station}】{point}{level}预警，{reading}。{plan}。{answer}",
    "mqtt": "【{station}】{point}{level}预警，{reading}。{plan}。{answer}",
    "voice": "{name}您好，这里是{station}。{village}{point}发布{level}预警，{reading}。"
    "{plan}。{answer}",
    "robot": "### {station} {level}预警\n"
    "- 监测点：{village}{point}\n- 数据：{reading}\n- 要求：{plan}\n- 责任人：{name}\n"
    "- 回应：{answer}",
    "broadcast": "各位村民请注意：{village}{point}发布{level}预警，{plan}。",
}

ANSWER: Mapping[str, str] = {
    "sms": "请回复{code}确认",
    "mqtt": "请回复{code}确认",
    "voice": "收到请按1确认，其他键或挂机为未确认",
    "robot": "回复短信{code}或接听电话按1确认",
    "broadcast": "",
}

# characters per channel: SMS one UCS2 segment (the modem sends text mode, no
# concatenation), a TTS text a person can follow in about 30 s, robots well under the
# services' own limits (WeCom text 2,048 bytes), a broadcast announcement
DEFAULT_LIMITS: Mapping[str, int] = {
    "sms": 70,
    "mqtt": 200,
    "voice": 120,
    "robot": 600,
    "broadcast": 120,
}


# the names people use for the metrics a township measures (the rules' reasons name ids)
METRIC_ZH: Mapping[str, str] = {
    "rain_mm": "雨量",
    "level_m": "水位",
    "crack_mm": "裂缝宽度",
    "displacement_mm": "位移",
    "tilt_deg": "倾角",
    "flow_m3s": "流量",
    "soil_moisture": "土壤含水率",
}


def reading_zh(reason: str | None) -> str:
    """The reading of a ticket's reason ("rule name: 中文 / English") in people's words:
    "短时强降雨，雨量 8.6 mm ≥ 橙色阈值 8 mm"."""
    if not reason:
        return ""
    name, _, rest = reason.partition(": ")
    zh = rest.split(" / ", 1)[0] if rest else name
    for metric, words in METRIC_ZH.items():
        zh = re.sub(rf"(?<![A-Za-z0-9_]){metric}(?![A-Za-z0-9_])", words, zh)
    return f"{name}，{zh}" if rest else zh


@dataclass(frozen=True, slots=True)
class Facts:
    station: str
    point: str  # the monitoring point's name
    village: str  # the village's name
    level: Level
    reading: str  # e.g. "1号雨量计 雨量 8.2 mm"
    code: str  # the ticket's short code a reply carries
    name: str = ""  # who is warned (names, for a robot message all of them)


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


def _units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


def render(
    channel: str,
    f: Facts,
    templates: Mapping[Any, Mapping[Any, str]] | None = None,
    plan: Mapping[Any, str] | None = None,
    limits: Mapping[Any, int] | None = None,
) -> str:
    """The text of a channel for a level, within the channel's limit (UTF-16 units)."""
    label = f.level.label
    tpl = (templates or {}).get(channel, {}).get(label) or DEFAULT_TEMPLATES[channel]
    limit = (limits or {}).get(channel) or DEFAULT_LIMITS[channel]
    answer = _fill(ANSWER[channel], {"code": f.code})
    values = {
        "station": f.station,
        "name": f.name,
        "point": f.point,
        # "下溪村后山滑坡" already says 下溪村
        "village": "" if f.point.startswith(f.village) else f.village,
        "level": LEVEL_ZH[f.level],
        "reading": f.reading,
        "plan": (plan or {}).get(label) or DEFAULT_PLAN[label],
        "answer": answer,
        "code": f.code,
    }
    text = _fill(tpl, values)
    for drop in ("reading", "village", "plan", "name"):
        if _units(text) <= limit:
            return text
        values[drop] = ""
        text = _fill(tpl, values).replace("，。", "。").replace("。。", "。")
    if _units(text) <= limit:
        return text
    # still too long (a long template or names): cut before the answer, keep the answer
    head = text[: len(text) - len(answer)] if answer and text.endswith(answer) else text
    tail = answer if head is not text else ""
    room = limit - _units(tail) - 1
    cut = ""
    for ch in head:
        if _units(cut + ch) > room:
            break
        cut += ch
    return cut + "…" + tail
