"""Configuration of the warning loop: people, duty roster, ticket policy, channels.

Sections of the station file (validated like the rest, unknown keys are errors):
`[[people]]`, `[[duty]]`, `[tickets]` (roles per step, stage deadlines, call deadlines),
`[notify]` (MQTT alert topic, SMS modem, voice calls, group robots, village broadcast,
webhook, sirens, message templates) and the calling policy per level
(`[tickets.calling.<level>]`, which a county reads and signs off).
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


class CountyDeadlines(_Model):
    """How long a township has to answer a warning of each level before the county steps
    in (county.toml `[escalation]`, seconds); None: that level stays with the township."""

    blue: int | None = Field(default=None, ge=30)
    yellow: int | None = Field(default=None, ge=30)
    orange: int | None = Field(default=None, ge=30)
    red: int | None = Field(default=None, ge=30)


class CountyPart(_Model):
    """What the county pushes down with its plan (#19 item 4): its name, its people (the
    top step of the station's calling ladder, grid `county`) and its deadlines."""

    name: str = Field(min_length=1, max_length=60)
    people: list[Person] = Field(default=[], max_length=500)
    deadlines: CountyDeadlines = CountyDeadlines()


def county_part_problems(part: CountyPart, local: list[Person]) -> list[str]:
    """What the model alone cannot see: the county's people stand at grid `county`, have
    unique ids, deputies among themselves, and never take the id of a station person of
    another grid (a county person replaces only a county person of the station file)."""
    out: list[str] = []
    ids = {p.id for p in part.people}
    seen: set[str] = set()
    theirs = {p.id: p for p in local}
    for i, p in enumerate(part.people):
        key = f"county.people[{i}]"
        if p.grid != "county":
            out.append(f"{key}.grid: the county's people stand at grid 'county', not {p.grid!r}")
        if p.id in seen:
            out.append(f"{key}.id: duplicate id {p.id!r}")
        seen.add(p.id)
        if p.deputy is not None and (p.deputy not in ids or p.deputy == p.id):
            out.append(f"{key}.deputy: not one of the county's people: {p.deputy!r}")
        mine = theirs.get(p.id)
        if mine is not None and mine.grid != "county":
            out.append(
                f"{key}.id: {p.id!r} is {mine.name} of this station's file "
                f"(grid {mine.grid or 'none'}); rename one of them"
            )
    return out


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


CallChannel = Literal["sms", "mqtt", "robot", "broadcast"]
EscalateTo = Literal["deputy", "up", "duty", "leader"]


class CallingLevel(_Model):
    """The calling policy of one level (叫应策略): which channels start at once, when the
    voice call comes and how often it is redialled, when an unanswered person counts as
    not reached (default: `ack_deadline` of the level), and who is called next."""

    channels: list[CallChannel] = ["sms", "mqtt", "robot"]
    voice_after: Duration | None = None  # None: no voice call at this level
    redials: int = Field(default=3, ge=0, le=10)
    redial_every: Duration = "100s"
    not_reached_after: Duration | None = None
    duty_at_once: bool = False  # the duty officer is called with the first round
    escalate: list[EscalateTo] = ["deputy", "up", "duty"]

    @field_validator("voice_after", "redial_every", "not_reached_after")
    @classmethod
    def _check(cls, v: str | None) -> str | None:
        return _duration(v) if v is not None else v


def _level(**kw: object) -> CallingLevel:
    return CallingLevel.model_validate(kw)


class CallingPolicy(_Model):
    """Defaults follow county practice: a voice call within 3 minutes, 3 redials within
    5 minutes, then the not-reached go up; red and orange also call the duty officer and
    the village broadcast at once, and bring in the township leaders with the first wave
    of the not reached; blue is a notice (messages, no call)."""

    blue: CallingLevel = _level(voice_after=None, channels=["sms", "mqtt", "robot"])
    yellow: CallingLevel = _level(voice_after="3m")
    orange: CallingLevel = _level(
        voice_after="1m",
        duty_at_once=True,
        channels=["sms", "mqtt", "robot", "broadcast"],
        escalate=["deputy", "up", "duty", "leader"],
    )
    red: CallingLevel = _level(
        voice_after="0s",
        duty_at_once=True,
        channels=["sms", "mqtt", "robot", "broadcast"],
        escalate=["deputy", "up", "duty", "leader"],
    )


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
    calling: CallingPolicy = Field(default_factory=lambda: CallingPolicy())


class MqttAlerts(_Model):
    enabled: bool = True
    alert_topic: str = "stations/{station}/alerts"
    ack_topic: str = "stations/{station}/acks"


class SmsSection(_Model):
    port: Path  # the modem's serial device, e.g. /dev/ttyUSB2
    # the 4G module's make: its text-to-speech and DTMF commands differ (voice calls)
    modem: Literal["quectel", "simcom"] = "quectel"
    baud: int = Field(default=115200, ge=1200)
    timeout_s: float = Field(default=10.0, gt=0)
    poll_s: float = Field(default=5.0, gt=0)  # reading unread replies when no +CMTI came


class VoiceSection(_Model):
    """Voice calls through the modem of `[notify.sms]` (one AT session for both)."""

    ring_s: float = Field(default=40.0, gt=0, le=120)  # no answer after
    repeat: int = Field(default=2, ge=1, le=5)  # how often the warning is spoken
    key_wait_s: float = Field(default=8.0, gt=0, le=60)  # after the last repetition
    speech_s: float = Field(default=30.0, gt=0, le=120)  # one repetition at most


class Robot(_Model):
    """A DingTalk, WeCom or Feishu group robot, for the levels and grid it serves."""

    id: Ident
    name: str = Field(default="", max_length=60)  # the group's name, shown on the page
    kind: Literal["dingtalk", "wecom", "feishu"]
    url: str = Field(pattern=r"^https?://")
    secret: str | None = None  # DingTalk and Feishu signing secret
    levels: list[LevelName] = ["blue", "yellow", "orange", "red"]
    villages: list[Ident] = []  # grid scope: empty = the whole township
    mention: bool = True  # @ the responsible people by their mobile numbers
    per_minute: int = Field(default=20, ge=1, le=600)  # the services' limit: 20 a minute
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class Broadcast(_Model):
    """A village broadcast controller (村村响/大喇叭): an HTTP JSON request built from a
    template (placeholders `{text}`, `{clip}`, `{level}`, `{village}`, `{point}`,
    `{code}`), and/or the sirens to sound, per village and level."""

    id: Ident
    villages: list[Ident] = Field(min_length=1)
    levels: list[LevelName] = ["orange", "red"]
    url: str | None = Field(default=None, pattern=r"^https?://")
    body: str = '{"text": "{text}", "clip": "{clip}", "repeat": 3}'
    headers: dict[str, str] = {}
    clips: dict[LevelName, str] = {}  # an audio clip name per level instead of speech
    sirens: list[Ident] = []  # devices of [[notify.sirens]] sounded with it
    timeout_s: float = Field(default=5.0, gt=0, le=60)


TemplateChannel = Literal["sms", "voice", "robot", "broadcast", "mqtt"]


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
    voice: VoiceSection | None = None
    robots: list[Robot] = []
    broadcasts: list[Broadcast] = []
    # message templates per channel and level; placeholders {station} {name} {point}
    # {village} {level} {reading} {plan} {answer} {code}; the defaults are in
    # gateway/tickets/messages.py
    templates: dict[TemplateChannel, dict[LevelName, str]] = {}
    plan: dict[LevelName, str] = {}  # what the plan says to do at a level
    limits: dict[TemplateChannel, Annotated[int, Field(ge=20, le=4000)]] = {}
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


def not_reached_ms(tickets: TicketsSection, level: LevelName) -> int:
    """When an unanswered person of a level counts as not reached (叫应时限)."""
    pol: CallingLevel = getattr(tickets.calling, level)
    text = pol.not_reached_after or getattr(tickets.ack_deadline, level)
    if text is None:
        text = {"blue": "60m", "yellow": "30m", "orange": "10m", "red": "5m"}[level]
    return parse_duration(text)


_PLACEHOLDERS = {"station", "name", "point", "village", "level", "reading", "plan", "answer"}
_PLACEHOLDERS |= {"code"}


def calling_problems(
    people: list[Person],
    duty: list[Shift],
    tickets: TicketsSection,
    notify: NotifySection,
    points: list[tuple[str, str, str | None]],  # (id, village, group)
    villages: set[str],
) -> list[str]:
    """The calling policy against the grid: every level reaches someone at every point,
    redials end before the person counts as not reached, channels are configured."""
    import re

    out: list[str] = []
    by_id = {p.id: p for p in people}

    def reachable(p: Person) -> bool:
        if not p.absent:
            return True
        d = by_id.get(p.deputy) if p.deputy else None
        return d is not None and not d.absent

    officers = [by_id[s.officer] for s in duty if s.officer in by_id]
    duty_ok = any(reachable(p) for p in officers)
    leaders = [p for p in people if "leader" in p.roles and p.grid == "township"]
    for level in ("blue", "yellow", "orange", "red"):
        pol: CallingLevel = getattr(tickets.calling, level)
        key = f"tickets.calling.{level}"
        limit = not_reached_ms(tickets, level)
        # the defaults adapt to what the file configures; a level written out is checked
        explicit = level in tickets.calling.model_fields_set
        if pol.voice_after is not None and explicit:
            last = parse_duration(pol.voice_after) + pol.redials * parse_duration(pol.redial_every)
            if last >= limit:
                out.append(
                    f"{key}.redials: the last redial ({last // 1000} s after the start) must "
                    f"come before the person counts as not reached ({limit // 1000} s)"
                )
            if notify.sms is None:
                out.append(f"{key}.voice_after: a voice call needs the modem of [notify.sms]")
        for i, ch in enumerate(pol.channels if explicit else ()):
            missing = {
                "sms": notify.sms is None,
                "mqtt": not notify.mqtt.enabled,
                "robot": not notify.robots,
                "broadcast": not notify.broadcasts,
            }[ch]
            if missing:
                out.append(f"{key}.channels[{i}]: {ch} is not configured in [notify]")
        for pid, village, group in points if people else ():  # no people file: no calls
            grids = [f"point:{pid}", f"village:{village}", "township", "county"]
            if group:
                grids.append(f"group:{group}")
            someone = any(p.grid in grids and reachable(p) for p in people)
            if pol.duty_at_once or "duty" in pol.escalate:
                someone = someone or duty_ok
            if "leader" in pol.escalate:
                someone = someone or any(reachable(p) for p in leaders)
            if not someone:
                out.append(
                    f"{key}: nobody can be reached for monitoring point {pid!r} (nobody in "
                    "its grid, or everyone absent without a deputy, and no duty officer)"
                )
    for i, r in enumerate(notify.robots):
        if r.kind in ("dingtalk", "feishu") and r.secret is not None and not r.secret:
            out.append(f"notify.robots[{i}].secret: empty")
        if r.kind == "wecom" and "key=" not in r.url:
            out.append(f"notify.robots[{i}].url: a WeCom robot's URL carries its key (?key=…)")
        for j, v in enumerate(r.villages):
            if v not in villages:
                out.append(f"notify.robots[{i}].villages[{j}]: unknown village {v!r}")
    sirens = {s.device for s in notify.sirens}
    for i, b in enumerate(notify.broadcasts):
        if b.url is None and not b.sirens:
            out.append(f"notify.broadcasts[{i}]: needs a url, sirens, or both")
        for j, v in enumerate(b.villages):
            if v not in villages:
                out.append(f"notify.broadcasts[{i}].villages[{j}]: unknown village {v!r}")
        for j, dev in enumerate(b.sirens):
            if dev not in sirens:
                out.append(f"notify.broadcasts[{i}].sirens[{j}]: unknown siren {dev!r}")
    for channel, texts in notify.templates.items():
        for lv, text in texts.items():
            for name in re.findall(r"\{(\w*)\}", text):
                if name not in _PLACEHOLDERS:
                    out.append(f"notify.templates.{channel}.{lv}: unknown placeholder {{{name}}}")
    return out
