"""The monthly report's figures from the ticket loop: warnings by level and type, hazard
tickets through their stages, call-and-acknowledge times, escalations, patrols.

Pure over a read-only connection; the period, the policy and `now` are passed in.
Definitions (the report prints them too):
- a warning counts in the month it was issued, at the highest level it reached; its type
  is the rule that issued it;
- overdue: a stage deadline (`[tickets] deadlines`, shortened by a raise as the desk does)
  that fell in the month before its step was taken;
- closure rate: hazard tickets opened in the month and closed (核销) or dismissed by its end;
- time to acknowledge by warning level: from the first call of a round (issue or raise)
  to the acknowledgement that ended it; by grid level: from a person's call to their own
  acknowledgement; rounds never acknowledged are counted apart;
- an escalation is one step up the grid (督导); "escalated past" counts calls whose
  deadline passed unanswered, by person.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.config.station import Config
from gateway.core.model import Level
from gateway.reports.period import Period
from gateway.tickets.lifecycle import FLOWS, Policy, Step, next_step
from gateway.tickets.people import People

LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
STAGES = ("confirm", "control", "rectify", "close")  # the step that ends each stage
GRID_ORDER = ("point", "group", "village", "township", "county", "duty")


@dataclass(frozen=True, slots=True)
class Stats:
    n: int
    median_s: float | None
    p90_s: float | None


def stats(values_ms: Iterable[int]) -> Stats:
    """Median and 90th percentile (nearest rank) in seconds."""
    v = sorted(values_ms)
    if not v:
        return Stats(0, None, None)
    p90 = v[max(0, math.ceil(0.9 * len(v)) - 1)]
    return Stats(len(v), round(statistics.median(v) / 1000, 1), round(p90 / 1000, 1))


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    kind: str
    level: Level | None
    state: str
    title: str
    device: str | None
    metric: str | None
    point: str | None
    rule: str | None
    reason: str | None
    opened_at: int


@dataclass(frozen=True, slots=True)
class Event:
    at: int
    kind: str
    actor: str
    level: Level | None
    note: str | None
    reason: str | None

    @property
    def step(self) -> str | None:
        return (self.note or "").split(":")[0] if self.kind == "step" else None


@dataclass(frozen=True, slots=True)
class Warnings:
    total: int
    by_level: dict[Level, int]
    by_type: dict[str, dict[Level, int]]  # issuing rule's name -> level -> count


@dataclass(frozen=True, slots=True)
class Hazards:
    opened: int
    by_level: dict[Level, int]
    by_source: dict[str, int]  # rule name, 巡查上报, 人工上报
    closed: int  # 核销 in the month (whenever opened)
    dismissed: int
    overdue: int
    open_at_end: int
    done_of_opened: int  # opened in the month and closed or dismissed by its end
    closure_rate: float | None
    stage: dict[str, Stats]  # step -> time the stage before it took


@dataclass(frozen=True, slots=True)
class Calls:
    rounds: int
    acknowledged: int
    unanswered: int
    by_level: dict[Level, Stats]
    by_grid: dict[str, Stats]
    all_rounds: Stats
    escalations: int
    escalated_past: list[tuple[str, int]]  # name, times; most first
    # per channel the answer came by (短信, 电话按1 …): time from the call to the answer
    by_channel: dict[str, Stats] = field(default_factory=dict)
    # per channel: attempts by outcome (sent, failed; voice: confirmed, no_answer, …)
    attempts: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Patrol:
    inspector: str
    records: int
    items_expected: int
    items_done: int
    abnormal: int
    hazards: int
    points: tuple[str, ...]

    @property
    def completion(self) -> float | None:
        return self.items_done / self.items_expected if self.items_expected else None


def read_tickets(conn: sqlite3.Connection, end: int) -> list[TicketRow]:
    rows = conn.execute(
        "SELECT id, kind, level, state, title, device, metric, point, rule, reason, opened_at "
        "FROM tickets WHERE opened_at < ? ORDER BY id",
        (end,),
    ).fetchall()
    return [TicketRow(r[0], r[1], Level(r[2]) if r[2] else None, *r[3:]) for r in rows]


def read_events(conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = defaultdict(list)
    if not ids:
        return out
    lo, hi = min(ids), max(ids)
    rows = conn.execute(
        "SELECT ticket_id, at, kind, actor, level, note, reason FROM ticket_events "
        "WHERE ticket_id BETWEEN ? AND ? ORDER BY id",
        (lo, hi),
    ).fetchall()
    for tid, at, kind, actor, level, note, reason in rows:
        out[tid].append(Event(at, kind, actor, Level(level) if level else None, note, reason))
    return out


def top_level(t: TicketRow, events: list[Event]) -> Level | None:
    seen = [e.level for e in events if e.level and e.kind in _LEVEL_EVENTS]
    return max([*seen, *([t.level] if t.level else [])], default=None)


_LEVEL_EVENTS = ("opened", "raised", "warning_issued", "warning_raised")


def warning_type(events: list[Event]) -> str:
    opened = next((e for e in events if e.kind == "opened"), None)
    if opened is not None and opened.reason and ": " in opened.reason:
        return opened.reason.split(": ", 1)[0]
    if opened is not None and opened.actor.startswith("rule:"):
        return opened.actor[5:]
    return "其他"


def hazard_source(t: TicketRow, rule_names: Mapping[str, str], handhelds: set[str]) -> str:
    if t.rule:
        return rule_names.get(t.rule, t.rule)
    if t.device in handhelds:
        return "巡查上报"
    return "人工上报"


def fault_type(t: TicketRow, no_data_rules: set[str]) -> str:
    if t.rule and t.rule.startswith("fault:"):
        return t.rule[len("fault:") :]
    if t.rule in no_data_rules:
        return "no_data"
    return t.rule or "other"


def _stage_deadlines(
    t: TicketRow, events: list[Event], policy: Policy
) -> list[tuple[int, int | None]]:
    """(deadline, when the step was taken or None) of each stage with a deadline."""
    out: list[tuple[int, int | None]] = []
    state, level = "discovered", None
    due: int | None = None
    for e in events:
        if e.kind == "opened":
            level = e.level
            due = _due(policy, t.kind, state, level, e.at)
        elif e.kind == "raised" and e.level is not None:
            level = e.level
            d = _due(policy, t.kind, state, level, e.at)
            if d is not None and (due is None or d < due):
                due = d
        elif e.kind == "step" and e.step in STAGES:
            if due is not None:
                out.append((due, e.at))
            state = _after(t.kind, e.step) or state
            due = _due(policy, t.kind, state, level, e.at)
        elif e.kind == "step" and e.step in ("dismiss", "lift"):
            return out
    if due is not None:
        out.append((due, None))
    return out


def _after(kind: str, step: str) -> str | None:
    flow = FLOWS.get(kind, {}).get(Step(step))
    return str(flow[1]) if flow else None


def _due(policy: Policy, kind: str, state: str, level: Level | None, at: int) -> int | None:
    step = next_step(kind, state)
    if step is None or level is None:
        return None
    ms = policy.deadlines.get((str(step), level))
    return at + ms if ms is not None else None


def warnings_of(tickets: list[TicketRow], events: dict[int, list[Event]], p: Period) -> Warnings:
    by_level: Counter[Level] = Counter()
    by_type: dict[str, Counter[Level]] = defaultdict(Counter)
    n = 0
    for t in tickets:
        if t.kind != "warning" or not p.start <= t.opened_at < p.end:
            continue
        level = top_level(t, events[t.id])
        if level is None:
            continue
        n += 1
        by_level[level] += 1
        by_type[warning_type(events[t.id])][level] += 1
    return Warnings(
        n,
        {lv: by_level[lv] for lv in LEVELS},
        {k: {lv: c[lv] for lv in LEVELS} for k, c in sorted(by_type.items())},
    )


def hazards_of(
    tickets: list[TicketRow],
    events: dict[int, list[Event]],
    p: Period,
    policy: Policy,
    rule_names: Mapping[str, str],
    handhelds: set[str],
) -> Hazards:
    opened = closed = dismissed = overdue = open_at_end = done = 0
    by_level: Counter[Level] = Counter()
    by_source: Counter[str] = Counter()
    stage: dict[str, list[int]] = {s: [] for s in STAGES}
    for t in tickets:
        if t.kind != "hazard":
            continue
        ev = events[t.id]
        steps = [e for e in ev if e.kind == "step"]
        end_at = next((e.at for e in steps if e.step in ("close", "dismiss")), None)
        if p.start <= t.opened_at < p.end:
            opened += 1
            level = top_level(t, ev)
            if level is not None:
                by_level[level] += 1
            by_source[hazard_source(t, rule_names, handhelds)] += 1
            if end_at is not None and end_at < p.end:
                done += 1
        if end_at is None or end_at >= p.end:
            open_at_end += 1
        closed += sum(1 for e in steps if e.step == "close" and p.start <= e.at < p.end)
        dismissed += sum(1 for e in steps if e.step == "dismiss" and p.start <= e.at < p.end)
        previous = t.opened_at
        for e in steps:
            if e.step in STAGES:
                if p.start <= e.at < p.end:
                    stage[str(e.step)].append(e.at - previous)
                previous = e.at
        if any(
            p.start <= due < p.end and (taken is None or taken > due)
            for due, taken in _stage_deadlines(t, ev, policy)
        ):
            overdue += 1
    return Hazards(
        opened=opened,
        by_level={lv: by_level[lv] for lv in LEVELS},
        by_source=dict(by_source.most_common()),
        closed=closed,
        dismissed=dismissed,
        overdue=overdue,
        open_at_end=open_at_end,
        done_of_opened=done,
        closure_rate=done / opened if opened else None,
        stage={s: stats(v) for s, v in stage.items()},
    )


def faults_of(
    tickets: list[TicketRow], p: Period, no_data_rules: set[str]
) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for t in tickets:
        if t.kind == "device_fault" and t.device and p.start <= t.opened_at < p.end:
            out[t.device][fault_type(t, no_data_rules)] += 1
    return {d: dict(c) for d, c in out.items()}


def _level_at(events: list[Event], at: int) -> Level | None:
    level = None
    for e in events:
        if e.at > at:
            break
        if e.level is not None and e.kind in (*_LEVEL_EVENTS, "warning_lowered"):
            level = e.level
    return level


def calls_of(
    conn: sqlite3.Connection,
    p: Period,
    events: dict[int, list[Event]],
    only: set[int] | None = None,
) -> Calls:
    rows = conn.execute(
        "SELECT ticket_id, round, grid, name, why, called_at, outcome, acked_at, acked_via "
        "FROM calls WHERE called_at >= ? AND called_at < ? ORDER BY id",
        (p.start, p.end),
    ).fetchall()
    by_channel: dict[str, list[int]] = defaultdict(list)
    for tid, _r, _g, _n, _w, called, outcome, acked, via in rows:
        if (only is None or tid in only) and outcome == "acknowledged" and acked is not None:
            by_channel[via or "api"].append(acked - called)
    attempts: dict[str, dict[str, int]] = {}
    for tid, channel, outcome, n in conn.execute(
        "SELECT ticket_id, channel, outcome, COUNT(*) FROM attempts "
        "WHERE started_at >= ? AND started_at < ? GROUP BY ticket_id, channel, outcome",
        (p.start, p.end),
    ):
        if only is None or tid in only:
            per = attempts.setdefault(channel, {})
            per[outcome] = per.get(outcome, 0) + n
    rounds: dict[tuple[int, int], list[tuple[str, str, str, int, str, int | None]]] = {}
    for tid, rnd, grid, name, why, called, outcome, acked, _via in rows:
        if only is not None and tid not in only:
            continue
        rounds.setdefault((tid, rnd), []).append((grid, name, why, called, outcome, acked))
    by_level: dict[Level, list[int]] = {lv: [] for lv in LEVELS}
    by_grid: dict[str, list[int]] = defaultdict(list)
    everything: list[int] = []
    acknowledged = 0
    escalation_steps: set[tuple[int, int]] = set()
    past: Counter[str] = Counter()
    starts: dict[int, list[int]] = defaultdict(list)
    for (tid, _), calls in rounds.items():
        starts[tid].append(min(c[3] for c in calls))
    for (tid, _), calls in rounds.items():
        start = min(c[3] for c in calls)
        following = [s for s in starts[tid] if s > start]
        stop = min(following) if following else None
        ack = next(
            (
                e.at
                for e in events.get(tid, [])
                if e.kind == "acknowledged" and e.at >= start and (stop is None or e.at < stop)
            ),
            None,
        )
        if ack is not None:
            acknowledged += 1
            level = _level_at(events.get(tid, []), start)
            everything.append(ack - start)
            if level is not None:
                by_level[level].append(ack - start)
        for grid, name, _why, called, outcome, acked in calls:
            if outcome == "acknowledged" and acked is not None:
                by_grid[grid.split(":")[0]].append(acked - called)
            if called > start:  # a wave after the round's start (督导)
                escalation_steps.add((tid, called))
            if outcome == "escalated":
                past[name] += 1
    return Calls(
        rounds=len(rounds),
        acknowledged=acknowledged,
        unanswered=len(rounds) - acknowledged,
        by_level={lv: stats(v) for lv, v in by_level.items()},
        by_grid={g: stats(by_grid[g]) for g in GRID_ORDER if g in by_grid},
        all_rounds=stats(everything),
        escalations=len(escalation_steps),
        escalated_past=sorted(past.items(), key=lambda kv: (-kv[1], kv[0])),
        by_channel={ch: stats(v) for ch, v in sorted(by_channel.items())},
        attempts=attempts,
    )


def patrols_of(conn: sqlite3.Connection, cfg: Config, p: Period) -> list[Patrol]:
    people = People(cfg)
    checklists = {c.id: {i.id for i in c.items} for c in cfg.checklists}
    rows = conn.execute(
        "SELECT inspector, point, checklist, items, ticket_id FROM patrol_records "
        "WHERE at >= ? AND at < ? ORDER BY at",
        (p.start, p.end),
    ).fetchall()
    acc: dict[str, list[int]] = {}
    where: dict[str, set[str]] = defaultdict(set)
    for inspector, point, checklist, items_json, ticket in rows:
        person = people.find(inspector)
        name = person.name if person else inspector
        items = json.loads(items_json)
        reported = {i["item"] for i in items}
        expected = checklists.get(checklist or "", reported)
        a = acc.setdefault(name, [0, 0, 0, 0, 0])
        a[0] += 1
        a[1] += len(expected)
        a[2] += len(expected & reported)
        a[3] += sum(1 for i in items if i["result"] == "abnormal")
        a[4] += 1 if ticket is not None else 0
        if point:
            where[name].add(point)
    return [
        Patrol(name, a[0], a[1], a[2], a[3], a[4], tuple(sorted(where[name])))
        for name, a in sorted(acc.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
