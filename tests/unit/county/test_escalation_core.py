"""The county's escalation decision, stepped through a fake clock (table-driven)."""

from __future__ import annotations

import pytest

from gateway.config.loop import NotifySection, Person, Shift
from gateway.county.config import EscalationSection
from gateway.county.escalation import (
    Close,
    Escalate,
    OpenCountyTicket,
    Redial,
    Relevel,
    Step,
    TownshipWarning,
    decide,
    message,
    on_duty,
    plan_calls,
)

T0 = 1_780_000_000_000  # UTC ms
MIN = 60_000
CFG = EscalationSection(red_s=600, orange_s=1200, yellow_s=3600, blue_s=None)


def w(level: str, *steps: Step, ticket: int = 7) -> TownshipWarning:
    return TownshipWarning("st1", ticket, level, T0, tuple(steps))


ISSUED_RED = Step(T0, "warning_issued", "red")
CASES = [
    # (name, warning, now, escalates?)
    ("red, unanswered, before its deadline", w("red", ISSUED_RED), T0 + 9 * MIN, False),
    ("red, unanswered, at its deadline", w("red", ISSUED_RED), T0 + 10 * MIN, True),
    (
        "red, answered in time",
        w("red", ISSUED_RED, Step(T0 + 3 * MIN, "acknowledged")),
        T0 + 60 * MIN,
        False,
    ),
    (
        "answered, then raised to red and not answered again",
        w(
            "red",
            Step(T0, "warning_issued", "yellow"),
            Step(T0 + 2 * MIN, "acknowledged"),
            Step(T0 + 30 * MIN, "warning_raised", "red"),
        ),
        T0 + 40 * MIN,
        True,
    ),
    (
        "yellow raised to red: the yellow clock runs on, the red one starts at the raise",
        w(
            "red",
            Step(T0, "warning_issued", "yellow"),
            Step(T0 + 55 * MIN, "warning_raised", "red"),
        ),
        T0 + 60 * MIN,
        True,
    ),
    (
        "yellow raised to red at 30 min: red's 10 minutes not over at 39",
        w(
            "red",
            Step(T0, "warning_issued", "yellow"),
            Step(T0 + 30 * MIN, "warning_raised", "red"),
        ),
        T0 + 39 * MIN,
        False,
    ),
    (
        "blue stays with the township",
        w("blue", Step(T0, "warning_issued", "blue")),
        T0 + 10**9,
        False,
    ),
    ("no events yet: the ticket's opening counts", w("orange"), T0 + 20 * MIN, True),
    ("no events yet, orange before 20 min", w("orange"), T0 + 19 * MIN, False),
]


@pytest.mark.parametrize(("name", "warning", "now", "escalates"), CASES, ids=[c[0] for c in CASES])
def test_escalates_when_the_deadline_of_an_unanswered_step_passed(
    name: str, warning: TownshipWarning, now: int, escalates: bool
) -> None:
    out = decide([warning], [], CFG, now)
    assert [type(d) for d in out] == ([Escalate] if escalates else [])
    if escalates:
        d = out[0]
        assert isinstance(d, Escalate)
        assert (d.station, d.ticket, d.level) == ("st1", 7, warning.level)
        assert d.reason.startswith("unanswered:")


def test_a_ticket_already_escalated_is_not_opened_again_but_follows_a_raise() -> None:
    have = OpenCountyTicket(3, "st1", 7, "orange")
    assert decide([w("orange")], [have], CFG, T0 + 10**8) == []
    assert decide([w("red")], [have], CFG, T0 + 10**8) == [Relevel(3, "red")]


REDIAL = [
    # (name, county ticket, now, decisions) with CFG's redial every 5 min, 3 rounds
    ("one round, 4 min ago", OpenCountyTicket(3, "st1", 7, "red", False, 1, T0), T0 + 4 * MIN, []),
    (
        "one round, 5 min ago",
        OpenCountyTicket(3, "st1", 7, "red", False, 1, T0),
        T0 + 5 * MIN,
        [Redial(3, "red", 2)],
    ),
    (
        "two rounds, the second 5 min ago",
        OpenCountyTicket(3, "st1", 7, "red", False, 2, T0),
        T0 + 5 * MIN,
        [Redial(3, "red", 3)],
    ),
    ("three rounds: no more", OpenCountyTicket(3, "st1", 7, "red", False, 3, T0), T0 + 10**8, []),
    ("taken by the county", OpenCountyTicket(3, "st1", 7, "red", True, 1, T0), T0 + 10**8, []),
    ("nobody to call: no rounds", OpenCountyTicket(3, "st1", 7, "red", False, 0), T0 + 10**8, []),
    (
        "raised while unanswered: a new level and another round",
        OpenCountyTicket(3, "st1", 7, "orange", False, 1, T0),
        T0 + 5 * MIN,
        [Relevel(3, "red"), Redial(3, "red", 2)],
    ),
]


@pytest.mark.parametrize(("name", "have", "now", "out"), REDIAL, ids=[r[0] for r in REDIAL])
def test_the_county_calls_again_until_someone_takes_it(
    name: str, have: OpenCountyTicket, now: int, out: list[object]
) -> None:
    assert decide([w("red")], [have], CFG, now) == out


def test_a_lifted_warning_closes_its_county_ticket() -> None:
    have = OpenCountyTicket(3, "st1", 7, "red")
    other = w("red", ISSUED_RED, ticket=8)
    assert decide([other], [have], CFG, T0 + 5 * MIN) == [Close(3, "lifted")]


PEOPLE = [
    Person(id="wang", name="王值班", phone="13900000001", roles=["duty_officer"]),
    Person(
        id="zhou",
        name="周值班",
        phone="13900000002",
        roles=["duty_officer"],
        absent=True,
        deputy="wang",
    ),
    Person(id="liu", name="刘局长", phone="13900000003", roles=["leader"], grid="county"),
    Person(id="xiang", name="乡领导", phone="13900000004", roles=["leader"], grid="township"),
]
DUTY = [
    Shift(officer="wang", start="08:00", end="20:00"),
    Shift(officer="zhou", start="20:00", end="08:00"),
]


@pytest.mark.parametrize(
    ("local_hour", "who"),
    [(9, "wang"), (19, "wang"), (3, "wang"), (21, "wang")],  # zhou is absent: his deputy
)
def test_the_officer_on_duty_in_county_time(local_hour: int, who: str) -> None:
    # T0 is 2026-05-28 20:26:40 UTC; Shanghai is UTC+8
    from datetime import UTC, datetime

    base = datetime(
        2026, 12, 4, local_hour - 8 if local_hour >= 8 else local_hour + 16, 0, tzinfo=UTC
    )
    p = on_duty(PEOPLE, DUTY, "Asia/Shanghai", int(base.timestamp() * 1000))
    assert p is not None and p.id == who


def test_nobody_on_duty_without_a_roster() -> None:
    assert on_duty(PEOPLE, [], "Asia/Shanghai", T0) is None


def test_calls_the_duty_officer_and_the_county_leader_not_the_township_leader() -> None:
    from gateway.config.loop import Robot, SmsSection, VoiceSection

    notify = NotifySection(
        sms=SmsSection(port="/dev/null"),  # type: ignore[arg-type]
        voice=VoiceSection(),
        robots=[Robot(id="r1", kind="dingtalk", url="https://x.invalid/", levels=["red"])],
    )
    calls = plan_calls(
        "red", PEOPLE, DUTY[:1] * 1, notify, "UTC", T0 - T0 % 86_400_000 + 9 * 3_600_000
    )
    got = {(c.person, c.role, c.channel, c.target) for c in calls}
    assert got == {
        ("wang", "duty", "sms", "13900000001"),
        ("wang", "duty", "voice", "13900000001"),
        ("liu", "leader", "sms", "13900000003"),
        ("liu", "leader", "voice", "13900000003"),
        ("wang", "duty", "robot", "r1"),
    }
    yellow = plan_calls(
        "yellow", PEOPLE, DUTY[:1], notify, "UTC", T0 - T0 % 86_400_000 + 9 * 3_600_000
    )
    assert {c.channel for c in yellow} == {"sms"}  # no voice, the robot serves red only
    assert plan_calls("red", PEOPLE, DUTY, NotifySection(), "UTC", T0) == []  # no channels


def test_the_message_names_township_place_level_minutes_and_the_reply_code() -> None:
    text = message("某县应急管理局", "溪口镇", "后山滑坡点", "red", 10, "0003")
    assert (
        text
        == "【某县应急管理局】溪口镇后山滑坡点红色预警，乡镇10分钟内未应答，请县值班员立即督导处置。回复0003确认"
    )


def test_county_check_says_what_is_wrong_with_its_key_path() -> None:
    from gateway.county.config import CountyConfig
    from gateway.county.escalation import problems
    from tests.county_data import COUNTY

    assert problems(CountyConfig.model_validate(COUNTY)) == []
    bad = CountyConfig.model_validate(
        {
            **COUNTY,
            "people": [
                {"id": "wang", "name": "王值班", "roles": ["duty_officer"], "deputy": "ghost"},
                {"id": "wang", "name": "又一个", "roles": ["leader"], "phone": "13900000009"},
            ],
            "duty": [{"officer": "zhou", "start": "08:00", "end": "20:00"}],
            "notify": {"mqtt": {"enabled": False}, "sms": {"port": "/dev/null"}, "voice": {}},
        }
    )
    assert problems(bad) == [
        "people[1].id: duplicate id 'wang'",
        "people[0].deputy: unknown person 'ghost'",
        "duty[0].officer: unknown person 'zhou'",
    ]
    silent = CountyConfig.model_validate({**COUNTY, "notify": {"mqtt": {"enabled": False}}})
    assert problems(silent) == [
        "notify: no channel to call the county by — set [notify.sms] or robots"
    ]
    nobody = CountyConfig.model_validate({**COUNTY, "people": [], "duty": []})
    assert problems(nobody) == [
        "duty: nobody to call — no [[duty]] roster and no leader in [[people]]"
    ]
    no_phone = CountyConfig.model_validate(
        {
            **COUNTY,
            "people": [
                {"id": "wang", "name": "王值班", "roles": ["duty_officer"]},
                COUNTY["people"][1],
            ],
        }
    )
    assert problems(no_phone) == ["people[0].phone: wang is called by SMS and has no phone"]
