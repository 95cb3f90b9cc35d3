"""Warning texts per channel and level: what to do and how to answer, within each
channel's limit; the answer instruction survives any cut."""

from __future__ import annotations

import pytest

from gateway.core.model import Level
from gateway.tickets.messages import Facts, reading_zh, render

F = Facts(
    station="清水镇应急管理站",
    point="下溪村后山滑坡",
    village="下溪村",
    level=Level.RED,
    reading="1号雨量计 雨量 12.4 mm ≥ 红色阈值 12 mm",
    code="0012",
    name="李明",
)


def units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


def test_sms_is_one_segment_and_keeps_the_reply_code() -> None:
    text = render("sms", F)
    assert units(text) <= 70
    assert (
        text
        == "【清水镇应急管理站】下溪村后山滑坡红色预警。立即组织危险区人员转移撤离。请回复0012确认"
    )


def test_voice_says_what_to_do_and_to_press_1() -> None:
    text = render("voice", F)
    assert text.startswith("李明您好，这里是清水镇应急管理站。下溪村后山滑坡发布红色预警")
    assert "立即组织危险区人员转移撤离" in text
    assert text.endswith("收到请按1确认，其他键或挂机为未确认")
    assert units(text) <= 120


@pytest.mark.parametrize("channel", ["sms", "voice", "robot", "broadcast", "mqtt"])
def test_a_long_template_is_cut_but_the_answer_stays(channel: str) -> None:
    tpl = {channel: {"red": "【{station}】" + "很长的说明" * 200 + "{answer}"}}
    text = render(channel, F, tpl, limits={channel: 60})
    assert units(text) <= 60
    answer = {
        "sms": "请回复0012确认",
        "mqtt": "请回复0012确认",
        "voice": "收到请按1确认",
        "robot": "回复短信0012或接听电话按1确认",
        "broadcast": "",
    }[channel]
    assert answer in text and "…" in text


def test_configured_templates_and_plans_per_level() -> None:
    text = render(
        "sms",
        F,
        {"sms": {"red": "{point}{level}：{plan}，{answer}"}},
        {"red": "马上撤离到村委会"},
    )
    assert text == "下溪村后山滑坡红色：马上撤离到村委会，请回复0012确认"
    blue = render("sms", Facts(**{**{k: getattr(F, k) for k in F.__slots__}, "level": Level.BLUE}))
    assert "加强巡查" in blue and "蓝色预警" in blue


def test_the_reading_is_said_in_peoples_words() -> None:
    reason = "短时强降雨: rain_mm 8.6 mm ≥ 橙色阈值 8 mm / rain_mm 8.6 mm ≥ orange threshold 8 mm"
    assert reading_zh(reason) == "短时强降雨，雨量 8.6 mm ≥ 橙色阈值 8 mm"
    assert (
        reading_zh("河道水位: level_m 3.1 m ≥ 蓝色阈值 3 m / …")
        == "河道水位，水位 3.1 m ≥ 蓝色阈值 3 m"
    )
    assert reading_zh(None) == ""
