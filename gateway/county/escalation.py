"""Escalation to the county (督导到县): a township warning nobody answered in time.

The core is pure (`now` is an argument, table-driven tests): `decide` looks at the
warnings in force at every station and the county tickets already open, and says which
warnings open a county ticket, which county tickets follow a raised level, and which
close because their warning was lifted. `plan_calls` says whom the county calls (the
duty officer of `[[duty]]`, or the deputy of an absent one, and the county's leaders)
on which of `[notify]`'s channels.

A warning's clock: every step of it (issued, raised, lowered) that nobody answered
afterwards waits for an answer within the county's deadline of that step's level
(`[escalation]`); the earliest such deadline passed escalates it. An answer (the
station's `acknowledged` event) stops every step before it.

`run(cfg, store)` is the loop the county service runs on every instance. Opening a
county ticket is `INSERT … ON CONFLICT DO NOTHING` on (station, station_ticket): the one
instance whose insert wins plans the calls (rows of `county_calls`, outcome `pending`,
in the same transaction); calls are then claimed with `FOR UPDATE SKIP LOCKED`, sent
through the station's notify channels (SMS modem, voice, group robots) and their
outcome stored (sent or failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from gateway.config.loop import NotifySection, Person, Shift
from gateway.county.config import CountyConfig, EscalationSection
from gateway.notify.base import AckIn, Channel, Delivery, DeliveryError
from gateway.tickets.people import STEP_KINDS, unanswered_due

log = logging.getLogger("stationgw.county.escalation")

LEVELS = ("blue", "yellow", "orange", "red")
LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


# --- the pure core -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    at: int  # UTC ms
    kind: str  # warning_issued, warning_raised, warning_lowered, acknowledged
    level: str | None = None


@dataclass(frozen=True, slots=True)
class TownshipWarning:
    """A warning in force at a station, with the events that start and stop its clock."""

    station: str
    ticket: int
    level: str  # its level now
    opened_at: int
    steps: tuple[Step, ...] = ()  # by time


@dataclass(frozen=True, slots=True)
class OpenCountyTicket:
    id: int
    station: str
    station_ticket: int
    level: str
    acked: bool = False  # taken by the county (签收): no more calls
    rounds: int = 0  # rounds of calls made so far
    last_round_at: int | None = None


@dataclass(frozen=True, slots=True)
class Escalate:
    station: str
    ticket: int
    level: str
    due_at: int  # the deadline that passed
    deadline_s: int

    @property
    def reason(self) -> str:
        """What county_tickets.reason keeps: a code the page says in its language."""
        return f"unanswered:{self.deadline_s}"


@dataclass(frozen=True, slots=True)
class Relevel:
    id: int  # county ticket
    level: str


@dataclass(frozen=True, slots=True)
class Redial:
    """Nobody at the county took the ticket: call the officer on duty now and the
    leaders again (round 2, 3 … up to `[escalation] rounds`)."""

    id: int  # county ticket
    level: str
    round: int


@dataclass(frozen=True, slots=True)
class Close:
    id: int  # county ticket
    why: str  # lifted


Decision = Escalate | Relevel | Redial | Close


def deadline_s(cfg: EscalationSection, level: str | None) -> int | None:
    if level not in LEVELS:
        return None
    value: int | None = getattr(cfg, f"{level}_s")
    return value


def due(w: TownshipWarning, cfg: EscalationSection) -> tuple[int, int] | None:
    """(due_at, deadline_s) of the earliest unanswered step, or None (answered, or no
    deadline at its levels)."""
    steps = [(s.at, s.kind, s.level) for s in w.steps]
    if not any(kind in STEP_KINDS for _, kind, _ in steps):  # events not arrived yet: the
        steps.insert(0, (w.opened_at, "warning_issued", w.level))  # ticket's opening
    return unanswered_due(steps, w.level, lambda lv: deadline_s(cfg, lv))


def decide(
    warnings: Iterable[TownshipWarning],
    county: Iterable[OpenCountyTicket],
    cfg: EscalationSection,
    now: int,
) -> list[Decision]:
    """What to do now. `warnings`: every warning in force (state issued); `county`: every
    county ticket not closed."""
    out: list[Decision] = []
    by_warning = {(c.station, c.station_ticket): c for c in county}
    in_force: set[tuple[str, int]] = set()
    for w in warnings:
        key = (w.station, w.ticket)
        in_force.add(key)
        have = by_warning.get(key)
        if have is not None:
            if LEVELS.index(w.level) > LEVELS.index(have.level):
                out.append(Relevel(have.id, w.level))
            if (
                not have.acked
                and have.last_round_at is not None
                and 0 < have.rounds < cfg.rounds
                and now >= have.last_round_at + cfg.redial_s * 1000
            ):
                out.append(Redial(have.id, w.level, have.rounds + 1))
            continue
        d = due(w, cfg)
        if d is not None and now >= d[0]:
            out.append(Escalate(w.station, w.ticket, w.level, d[0], d[1]))
    for key, c in by_warning.items():
        if key not in in_force:
            out.append(Close(c.id, "lifted"))
    return out


@dataclass(frozen=True, slots=True)
class PlannedCall:
    person: str  # [[people]] id
    name: str
    role: str  # duty, leader
    channel: str  # sms, voice, robot
    target: str  # phone or robot id


def on_duty(people: Sequence[Person], duty: Sequence[Shift], tz: str, now: int) -> Person | None:
    """The officer whose shift `now` falls in (county time), or the deputy of an absent
    one (the station's rule, gateway.tickets.people)."""
    by_id = {p.id: p for p in people}
    local = datetime.fromtimestamp(now / 1000, UTC).astimezone(ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    day = local.isoweekday()
    for s in duty:
        start = int(s.start[:2]) * 60 + int(s.start[3:])
        end = int(s.end[:2]) * 60 + int(s.end[3:])
        if start < end:
            hit = start <= minute < end and day in s.days
        else:  # overnight: the day is the one the shift began on
            yesterday = day - 1 or 7
            hit = (minute >= start and day in s.days) or (minute < end and yesterday in s.days)
        if hit and s.officer in by_id:
            return stand_in(by_id[s.officer], by_id)
    return None


def stand_in(p: Person, by_id: Mapping[str, Person]) -> Person | None:
    if not p.absent:
        return p
    d = by_id.get(p.deputy) if p.deputy else None
    return d if d is not None and not d.absent else None


def plan_calls(
    level: str,
    people: Sequence[Person],
    duty: Sequence[Shift],
    notify: NotifySection,
    tz: str,
    now: int,
) -> list[PlannedCall]:
    """The county's duty officer on duty now, then its leaders, on every channel the
    county has for them: SMS (and a voice call at orange and red, when `[notify.voice]`
    is set) to their phones, and the group robots that serve the level."""
    by_id = {p.id: p for p in people}
    who: list[tuple[Person, str]] = []
    officer = on_duty(people, duty, tz, now)
    if officer is not None:
        who.append((officer, "duty"))
    for p in people:
        if "leader" in p.roles and p.grid in (None, "county"):
            q = stand_in(p, by_id)
            if q is not None and all(q.id != x.id for x, _ in who):
                who.append((q, "leader"))
    out: list[PlannedCall] = []
    for p, role in who:
        if p.phone and notify.sms is not None:
            out.append(PlannedCall(p.id, p.name, role, "sms", p.phone))
            if notify.voice is not None and level in ("orange", "red"):
                out.append(PlannedCall(p.id, p.name, role, "voice", p.phone))
    if who:  # one message per group robot, in the name of the first called
        p, role = who[0]
        for r in notify.robots:
            if level in r.levels:
                out.append(PlannedCall(p.id, p.name, role, "robot", r.id))
    return out


def message(
    county: str, station: str, place: str, level: str, minutes: int, code: str, round: int = 1
) -> str:
    """The county's call: which township, where, the level, how long unanswered (and, from
    the second round on, which call this is)."""
    lv = LEVEL_ZH.get(level, level)
    again = f"（第{round}次呼叫，县里尚无人签收）" if round > 1 else ""
    return (
        f"【{county}】{again}{station}{place}{lv}预警，乡镇{minutes}分钟内未应答，"
        f"请县值班员立即督导处置。回复{code}确认"
    )


# --- the loop ----------------------------------------------------------------------


class ConnectionSource(Protocol):
    def connect(self) -> Any: ...


def load_warnings(conn: Any) -> list[TownshipWarning]:
    rows = conn.execute(
        "SELECT station, id, level, opened_at FROM tickets "
        "WHERE kind = 'warning' AND state = 'issued' AND level IS NOT NULL"
    ).fetchall()
    events = conn.execute(
        "SELECT e.station, e.ticket_id, e.at, e.kind, e.level FROM ticket_events e "
        "JOIN tickets t ON t.station = e.station AND t.id = e.ticket_id "
        "WHERE t.kind = 'warning' AND t.state = 'issued' "
        "AND e.kind IN ('warning_issued', 'warning_raised', 'warning_lowered', 'acknowledged') "
        "ORDER BY e.at, e.id"
    ).fetchall()
    steps: dict[tuple[str, int], list[Step]] = {}
    for st, tid, at, kind, level in events:
        steps.setdefault((st, int(tid)), []).append(Step(_ms(at), str(kind), level))
    return [
        TownshipWarning(
            str(st),
            int(tid),
            str(level),
            _ms(opened) if opened is not None else 0,
            tuple(steps.get((str(st), int(tid)), ())),
        )
        for st, tid, level, opened in rows
        if level in LEVELS
    ]


def load_county_open(conn: Any) -> list[OpenCountyTicket]:
    """County tickets not closed, with the rounds of calls made (a round's calls share
    their `at`)."""
    return [
        OpenCountyTicket(
            int(i),
            str(st),
            int(tid),
            str(lv),
            state == "acked",
            int(n),
            _ms(last) if last else None,
        )
        for i, st, tid, lv, state, n, last in conn.execute(
            "SELECT t.id, t.station, t.station_ticket, t.level, t.state, "
            "count(DISTINCT c.at), max(c.at) FROM county_tickets t "
            "LEFT JOIN county_calls c ON c.ticket_id = t.id "
            "WHERE t.state <> 'closed' GROUP BY t.id"
        ).fetchall()
    ]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _place(conn: Any, station: str, ticket: int) -> tuple[str, str]:
    """The station's and the point's names, from the station's state message."""
    row = conn.execute(
        "SELECT s.name, s.state, t.point FROM tickets t LEFT JOIN stations s ON s.id = t.station "
        "WHERE t.station = %s AND t.id = %s",
        (station, ticket),
    ).fetchone()
    if row is None:
        return station, ""
    name, state, point = row
    points = {p.get("id"): p.get("name") for p in (state or {}).get("points", [])}
    return str(name or station), str(points.get(point) or "")


def apply(
    conn: Any, decisions: Sequence[Decision], cfg: CountyConfig, now: int, names: Mapping[str, str]
) -> list[int]:
    """Store the decisions (one transaction); the ids of the county tickets this call
    opened (the calls planned for them are pending)."""
    opened: list[int] = []
    with conn.transaction():
        for d in decisions:
            if isinstance(d, Close):
                conn.execute(
                    "UPDATE county_tickets SET state = 'closed', closed_at = %s "
                    "WHERE id = %s AND state <> 'closed'",
                    (_dt(now), d.id),
                )
            elif isinstance(d, Relevel):
                conn.execute("UPDATE county_tickets SET level = %s WHERE id = %s", (d.level, d.id))
            elif isinstance(d, Redial):
                _redial(conn, d, cfg, now, names)
            else:
                row = conn.execute(
                    "INSERT INTO county_tickets (station, station_ticket, level, state, "
                    "opened_at, reason) VALUES (%s, %s, %s, 'open', %s, %s) "
                    "ON CONFLICT (station, station_ticket) DO NOTHING RETURNING id",
                    (d.station, d.ticket, d.level, _dt(now), d.reason),
                ).fetchone()
                if row is None:  # another instance opened it
                    continue
                cid = int(row[0])
                opened.append(cid)
                _plan_round(conn, cid, d.station, d.ticket, d.level, d.deadline_s, cfg, now, names)
                log.warning(
                    "county ticket %d: %s warning %d (%s) not answered within %d s",
                    cid,
                    d.station,
                    d.ticket,
                    d.level,
                    d.deadline_s,
                )
    return opened


def _plan_round(
    conn: Any,
    cid: int,
    station_id: str,
    ticket: int,
    level: str,
    deadline: int,
    cfg: CountyConfig,
    now: int,
    names: Mapping[str, str],
    round: int = 1,
) -> None:
    """One round of calls of a county ticket: rows of county_calls, pending, sharing `at`."""
    station, point = _place(conn, station_id, ticket)
    station = names.get(station_id, station)
    text = message(cfg.county.name, station, point, level, max(1, deadline // 60), code(cid), round)
    for c in plan_calls(level, cfg.people, cfg.duty, cfg.notify, cfg.county.timezone, now):
        conn.execute(
            "INSERT INTO county_calls (ticket_id, at, person, role, channel, "
            "target, outcome, detail) VALUES (%s, %s, %s, %s, %s, %s, 'pending', %s)",
            (cid, _dt(now), c.person, c.role, c.channel, c.target, text),
        )


def _redial(conn: Any, d: Redial, cfg: CountyConfig, now: int, names: Mapping[str, str]) -> None:
    """Another round, unless the ticket was taken or another instance made this round
    (the ticket's row is locked while its rounds are counted)."""
    row = conn.execute(
        "SELECT station, station_ticket FROM county_tickets WHERE id = %s AND state = 'open' "
        "FOR UPDATE",
        (d.id,),
    ).fetchone()
    if row is None:
        return
    (made,) = conn.execute(
        "SELECT count(DISTINCT at) FROM county_calls WHERE ticket_id = %s", (d.id,)
    ).fetchone()
    if int(made) + 1 != d.round:
        return
    deadline = deadline_s(cfg.escalation, d.level) or 0
    _plan_round(conn, d.id, str(row[0]), int(row[1]), d.level, deadline, cfg, now, names, d.round)
    log.warning("county ticket %d: nobody at the county took it; calling round %d", d.id, d.round)


def code(county_ticket: int) -> str:
    """The reply code of a county ticket: 4 to 6 digits, what the SMS channel finds in a
    reply (gateway.notify.gsm.find_code); the county's modem serves county tickets only."""
    return f"{county_ticket:04d}"


def ack(conn: Any, ticket_id: int, by: str, now: int) -> dict[str, Any] | None:
    """The county duty officer took the ticket (from the page, or an SMS reply); None if
    there is no such ticket or it was taken or closed already."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE county_tickets SET state = 'acked', acked_by = %s, acked_at = %s "
            "WHERE id = %s AND state = 'open' RETURNING id, station, station_ticket, level",
            (by, _dt(now), ticket_id),
        ).fetchone()
        if row is not None:
            conn.execute(
                "UPDATE county_calls SET outcome = 'stopped' WHERE ticket_id = %s "
                "AND outcome = 'pending'",
                (ticket_id,),
            )
    if row is None:
        return None
    return {"id": int(row[0]), "station": row[1], "station_ticket": int(row[2]), "level": row[3]}


Claimed = tuple[int, int, str, str, str, str, str]


def claim_calls(conn: Any, limit: int = 50) -> list[Claimed]:
    """Pending calls, taken by this instance: (id, ticket, person, role, channel, target,
    text)."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE county_calls SET outcome = 'sending' WHERE id IN (SELECT id FROM "
            "county_calls WHERE outcome = 'pending' ORDER BY id LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            "RETURNING id, ticket_id, person, role, channel, target, detail",
            (limit,),
        ).fetchall()
    return [
        (int(a), int(b), str(c), str(d), str(e), str(f or ""), str(g or ""))
        for a, b, c, d, e, f, g in rows
    ]


def build_channels(cfg: CountyConfig, on_ack: Callable[[AckIn], None]) -> dict[str, Channel]:
    """The county's own SMS modem, voice calls and group robots (gateway.notify)."""
    n = cfg.notify
    out: dict[str, Channel] = {}
    if n.sms is not None:
        from gateway.notify.sms import SmsChannel

        sms = SmsChannel(n.sms, on_ack)
        out["sms"] = sms
        if n.voice is not None:
            from gateway.notify.voice import VoiceChannel

            out["voice"] = VoiceChannel(sms, n.voice, on_ack, lambda _i: False)
    if n.robots:
        from gateway.notify.robots import RobotChannel

        out["robot"] = RobotChannel(n.robots)
    return out


async def send_calls(
    conn: Any, cfg: CountyConfig, channels: Mapping[str, Channel], timeout_s: float = 60.0
) -> int:
    """Send the calls this instance claimed; store each outcome. How many were sent."""
    loop = asyncio.get_running_loop()
    calls = await loop.run_in_executor(None, claim_calls, conn)
    people = {p.id: p for p in cfg.people}
    sent = 0
    for cid, tid, person, _role, channel, target, text in calls:
        p = people.get(person)
        ch = channels.get(channel)
        outcome, detail = "failed", f"channel {channel} not configured"
        if ch is not None and p is not None:
            body: dict[str, Any] = {"text": text, "title": text, "name": p.name}
            if channel == "robot":
                body["mentions"] = [p.phone] if p.phone else []
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancellation
                # that comes as the send finishes, and the loop would not stop
                async with asyncio.timeout(timeout_s):
                    result = await ch.send(Delivery(cid, tid, channel, target, body))
                outcome = "answered" if result == "confirmed" else "sent"
                detail = text
                sent += 1
            except DeliveryError as e:
                outcome, detail = "failed", str(e)
            except TimeoutError:
                outcome, detail = "failed", f"no result within {timeout_s} s"
        await loop.run_in_executor(None, _record, conn, cid, outcome, detail)
    return sent


def _record(conn: Any, call: int, outcome: str, detail: str) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE county_calls SET outcome = %s, detail = %s WHERE id = %s",
            (outcome, detail[:2000], call),
        )


def step(conn: Any, cfg: CountyConfig, now: int) -> list[int]:
    """One pass: read, decide, store. The county tickets opened."""
    names = {s.id: s.name for s in cfg.stations}
    decisions = decide(load_warnings(conn), load_county_open(conn), cfg.escalation, now)
    conn.rollback()  # the reads' transaction (a no-op in autocommit)
    if not decisions:
        return []
    return apply(conn, decisions, cfg, now, names)


async def run(
    cfg: CountyConfig,
    store: ConnectionSource,
    *,
    interval_s: float = 5.0,
    channels: Mapping[str, Channel] | None = None,
    clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> None:
    """The escalation loop of one county instance (until cancelled). A database that
    is down is waited for; nothing is decided twice (see the module's note)."""
    loop = asyncio.get_running_loop()

    people = {p.phone: p.id for p in cfg.people if p.phone}

    def on_ack(a: AckIn) -> None:  # an SMS answer "0012 收到" takes county ticket 12
        if a.code is None or not a.code.isdigit():
            return
        by = people.get(a.by) or people.get(a.by.removeprefix("+86")) or a.by
        reply = AckIn(by, a.via, None, a.code, a.note, a.done)
        loop.run_in_executor(None, _ack_by_reply, store, int(a.code), reply, clock())

    chans = dict(channels) if channels is not None else build_channels(cfg, on_ack)
    for ch in chans.values():
        await ch.start()
    conn: Any = None
    try:
        while True:
            try:
                if conn is None or conn.closed:
                    conn = await loop.run_in_executor(None, store.connect)
                    conn.autocommit = True
                opened = await loop.run_in_executor(None, step, conn, cfg, clock())
                if opened:
                    log.info("county tickets opened: %s", opened)
                await send_calls(conn, cfg, chans)
            except Exception as e:  # PostgreSQL gone: wait and try again
                log.error("escalation pass failed (%s); trying again", e)
                with contextlib.suppress(Exception):
                    if conn is not None:
                        conn.close()
                conn = None
            await asyncio.sleep(interval_s)
    finally:
        for ch in chans.values():
            with contextlib.suppress(Exception):
                await ch.stop()
        if conn is not None:
            conn.close()


def _ack_by_reply(store: ConnectionSource, tid: int, a: AckIn, now: int) -> None:
    conn = store.connect()
    try:
        conn.autocommit = True
        if ack(conn, tid, a.by, now) is not None and a.done is not None:
            a.done()
    finally:
        conn.close()


def problems(cfg: CountyConfig) -> list[str]:
    """What `stationgw county check` says about the escalation sections, with key paths:
    a roster naming nobody known, a county that could call nobody, channels missing."""
    out: list[str] = []
    ids: set[str] = set()
    for i, p in enumerate(cfg.people):
        if p.id in ids:
            out.append(f"people[{i}].id: duplicate id {p.id!r}")
        ids.add(p.id)
    for i, p in enumerate(cfg.people):
        if p.deputy is not None and (p.deputy not in ids or p.deputy == p.id):
            out.append(f"people[{i}].deputy: unknown person {p.deputy!r}")
    for i, s in enumerate(cfg.duty):
        if s.officer not in ids:
            out.append(f"duty[{i}].officer: unknown person {s.officer!r}")
    n = cfg.notify
    if n.voice is not None and n.sms is None:
        out.append("notify.voice: a voice call needs the modem of [notify.sms]")
    for i, r in enumerate(n.robots):
        if r.villages:
            out.append(f"notify.robots[{i}].villages: a county robot serves every township")
    if not cfg.duty and not any("leader" in p.roles for p in cfg.people):
        out.append("duty: nobody to call — no [[duty]] roster and no leader in [[people]]")
    elif n.sms is None and not n.robots:
        out.append("notify: no channel to call the county by — set [notify.sms] or robots")
    elif n.sms is not None:
        for i, p in enumerate(cfg.people):
            on_roster = any(s.officer == p.id for s in cfg.duty) or "leader" in p.roles
            if on_roster and not p.phone:
                out.append(f"people[{i}].phone: {p.id} is called by SMS and has no phone")
    return out
