"""Configuration of the warning loop: people, duty roster, ticket policy, channels.

Sections of the station file (validated like the rest, unknown keys are errors):
`[[people]]`, `[[duty]]`, `[tickets]` (roles per step, stage deadlines, call deadlines),
`[notify]` (MQTT alert topic, SMS modem, webhook, sirens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rules.durations import parse_duration

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Role = Literal["duty_officer", "technician", "grid_member", "leader"]
LevelName = Literal["blue", "yellow", "orange", "red"]
GRID_LEVELS = ("point", "group", "village", "township", "county")  # 五级网格, lowest first
Phone = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(v: str) -> str:
    parse_duration(v)
    return v


Duration = Annotated[str, Field(min_length=1)]


class Person(_Model):
    """Someone the station calls: grid position `"<level>:<id>"` (`"township"`, `"county"`
    without an id), roles, and a deputy who stands in while `absent`."""

    id: Ident
    name: str = Field(min_length=1)
    phone: Phone | None = None
    roles: list[Role] = []
    grid: str | None = None
    deputy: Ident | None = None
    absent: bool = False

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: str | None) -> str | None:
        if v is None:
            return v
        level, _, _ = v.partition(":")
        if level not in GRID_LEVELS:
            raise ValueError(f"grid level must be one of {', '.join(GRID_LEVELS)}: {v!r}")
        if level in ("point", "group", "village") and not v.partition(":")[2]:
            raise ValueError(f"{level} needs an id, e.g. {level}:xiaxi")
        return v


class Shift(_Model):
    """A daily shift in the station's time zone; `days` 1 = Monday … 7 = Sunday."""

    officer: Ident
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    days: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5, 6, 7]


def default_roles() -> dict[str, list[str]]:
    return {
        "confirm": ["duty_officer", "leader", "technician"],
        "control": ["grid_member", "duty_officer", "leader"],
        "rectify": ["grid_member", "technician", "leader"],
        "close": ["leader"],
        "dismiss": ["leader", "technician"],
        "lift": ["leader", "duty_officer"],
    }


def default_fault_roles() -> dict[str, list[str]]:
    return {
        "confirm": ["technician", "duty_officer"],
        "rectify": ["technician"],
        "close": ["technician", "leader"],
        "dismiss": ["technician"],
    }


Steps = Literal["confirm", "control", "rectify", "close", "dismiss", "lift"]


class LevelDurations(_Model):
    blue: Duration | None = None
    yellow: Duration | None = None
    orange: Duration | None = None
    red: Duration | None = None

    @field_validator("blue", "yellow", "orange", "red")
    @classmethod
    def _check(cls, v: str | None) -> str | None:
        return _duration(v) if v is not None else v


class TicketsSection(_Model):
    """Who may take which step, stage deadlines per level, call deadlines per level."""

    # step -> roles; steps not named keep their defaults (see `default_roles`)
    roles: dict[Steps, list[Role]] = {}
    fault_roles: dict[Steps, list[Role]] = {}
    # deadline of the step that follows a state, per level: e.g. confirm within 30m of red
    deadlines: dict[Literal["confirm", "control", "rectify", "close"], LevelDurations] = {}
    # a warning's call must be acknowledged within (叫应时限)
    ack_deadline: LevelDurations = LevelDurations(blue="60m", yellow="30m", orange="10m", red="5m")
    auto_lower: list[LevelName] = []  # warning levels a falling rule may lower by itself
    sms_retries: int = Field(default=3, ge=0, le=20)


class MqttAlerts(_Model):
    enabled: bool = True
    alert_topic: str = "stations/{station}/alerts"
    ack_topic: str = "stations/{station}/acks"


class SmsSection(_Model):
    port: Path  # the modem's serial device, e.g. /dev/ttyUSB2
    baud: int = Field(default=115200, ge=1200)
    timeout_s: float = Field(default=10.0, gt=0)
    poll_s: float = Field(default=5.0, gt=0)  # reading unread replies when no +CMTI came


class WebhookSection(_Model):
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=5.0, gt=0)


class Siren(_Model):
    """A warning broadcast / siren actuator, over MQTT or on a serial line."""

    device: Ident
    points: list[Ident] = Field(min_length=1)
    levels: list[LevelName] = ["orange", "red"]
    confirm_s: float = Field(default=5.0, gt=0)
    transport: Literal["mqtt", "serial"] = "mqtt"
    port: Path | None = None  # the serial line, with transport = "serial"
    baud: int = Field(default=9600, ge=1200)


class NotifySection(_Model):
    mqtt: MqttAlerts = MqttAlerts()
    sms: SmsSection | None = None
    webhook: WebhookSection | None = None
    sirens: list[Siren] = []
    max_attempts: int = Field(default=6, ge=1, le=100)  # then the delivery is failed


def cross_check_loop(
    people: list[Person],
    duty: list[Shift],
    sirens: list[Siren],
    villages: set[str],
    points: set[str],
    groups: set[str],
) -> list[str]:
    out: list[str] = []
    ids: set[str] = set()
    for i, p in enumerate(people):
        if p.id in ids:
            out.append(f"people[{i}].id: duplicate id {p.id!r}")
        ids.add(p.id)
    for i, p in enumerate(people):
        if p.deputy is not None and (p.deputy not in ids or p.deputy == p.id):
            out.append(f"people[{i}].deputy: unknown person {p.deputy!r}")
        if p.grid:
            level, _, gid = p.grid.partition(":")
            known = {"point": points, "village": villages, "group": groups}.get(level)
            if known is not None and gid not in known:
                out.append(f"people[{i}].grid: unknown {level} {gid!r}")
    for i, shift in enumerate(duty):
        if shift.officer not in ids:
            out.append(f"duty[{i}].officer: unknown person {shift.officer!r}")
    for i, siren in enumerate(sirens):
        if siren.transport == "serial" and siren.port is None:
            out.append(f"notify.sirens[{i}].port: a serial siren needs its port")
        for j, pt in enumerate(siren.points):
            if pt not in points:
                out.append(f"notify.sirens[{i}].points[{j}]: unknown monitoring point {pt!r}")
    return out
