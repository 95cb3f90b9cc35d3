"""The calling policy, voice, robots and broadcasts in the station file: a policy that
cannot reach anyone, redials that outlast the not-reached time, channels that are not
configured, unknown villages, sirens and placeholders are errors with their key paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.station import parse_config
from gateway.core.errors import ConfigError
from gateway.tickets.fanout import calling_policy
from tests.unit.tickets.loop_helpers import station


def problems(tmp_path: Path, **extra: Any) -> list[str]:
    with pytest.raises(ConfigError) as e:
        station(tmp_path, **extra)
    return list(e.value.problems)


def test_defaults_follow_practice(tmp_path: Path) -> None:
    cfg = station(tmp_path)
    pol = calling_policy(cfg)
    red = pol[max(pol)]
    # a voice call at once, 3 redials 100 s apart: all within the 5 minutes of red
    assert (red.voice_after, red.redials, red.redial_every, red.not_reached) == (
        0,
        3,
        100_000,
        300_000,
    )
    assert red.escalate == ("deputy", "up", "duty", "leader") and red.duty_at_once
    blue = pol[min(pol)]
    assert blue.voice_after is None and not blue.duty_at_once


def test_nobody_to_reach_is_an_error_with_its_key_path(tmp_path: Path) -> None:
    everyone_absent = [
        {"id": "li", "name": "李网格", "grid": "point:slope", "absent": True},
        {"id": "zhao", "name": "赵值班", "roles": ["duty_officer"], "absent": True},
    ]
    found = problems(
        tmp_path,
        people=everyone_absent,
        duty=[{"officer": "zhao", "start": "00:00", "end": "00:00"}],
    )
    assert [x.split(":")[0] for x in found] == [
        f"tickets.calling.{lv}" for lv in ("blue", "yellow", "orange", "red")
    ]
    assert "nobody can be reached for monitoring point 'slope'" in found[3]


def test_redials_after_the_not_reached_time_and_missing_channels(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        tickets={
            "calling": {
                "yellow": {
                    "voice_after": "3m",
                    "redials": 3,
                    "redial_every": "2m",
                    "not_reached_after": "5m",
                    "channels": ["sms", "robot"],
                }
            }
        },
    )
    assert found == [
        "tickets.calling.yellow.redials: the last redial (540 s after the start) must come "
        "before the person counts as not reached (300 s)",
        "tickets.calling.yellow.voice_after: a voice call needs the modem of [notify.sms]",
        "tickets.calling.yellow.channels[0]: sms is not configured in [notify]",
        "tickets.calling.yellow.channels[1]: robot is not configured in [notify]",
    ]


def test_robots_broadcasts_and_templates_are_checked(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        notify={
            "robots": [
                {"id": "wx", "kind": "wecom", "url": "https://qyapi.weixin.qq.com/x"},
                {
                    "id": "dd",
                    "kind": "dingtalk",
                    "url": "https://oapi.dingtalk.com/robot/send",
                    "villages": ["nowhere"],
                },
            ],
            "broadcasts": [{"id": "b1", "villages": ["xiaxi"], "sirens": ["s9"]}],
            "templates": {"sms": {"red": "{station}{point}{bogus}"}},
        },
    )
    assert found == [
        "notify.robots[0].url: a WeCom robot's URL carries its key (?key=…)",
        "notify.robots[1].villages[0]: unknown village 'nowhere'",
        "notify.broadcasts[0].sirens[0]: unknown siren 's9'",
        "notify.templates.sms.red: unknown placeholder {bogus}",
    ]


def test_a_complete_policy_is_accepted(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            **station(tmp_path).model_dump(mode="json", exclude_unset=True),
            "notify": {
                "sms": {"port": "/dev/ttyUSB2", "modem": "simcom"},
                "voice": {},
                "robots": [
                    {
                        "id": "dd",
                        "kind": "dingtalk",
                        "url": "https://oapi.dingtalk.com/robot/send?access_token=x",
                        "secret": "SECabc",
                        "levels": ["orange", "red"],
                        "villages": ["xiaxi"],
                    }
                ],
            },
        },
        tmp_path / "station.toml",
    )
    assert cfg.notify.sms is not None and cfg.notify.sms.modem == "simcom"
    assert cfg.notify.robots[0].villages == ["xiaxi"]
