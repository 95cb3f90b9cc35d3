"""The call-and-acknowledge loop (叫应) and its escalation (督导) as a pure planner.

A warning is called up the grid of its monitoring point, one step at a time: the point's
responders first, then group, village, township, county. Each call has a deadline that
depends on the level; when it passes with no acknowledgement the next step up and the
duty officer on shift are called, repeating at the top until someone answers. Orange and
red call the duty officer at once. Time is an argument; the caller persists the state
and the calls of a plan in one transaction, so a restart neither repeats nor loses a
step: an overdue step fires once, on the first tick after the restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.core.model import Level


@dataclass(frozen=True, slots=True)
class Callee:
    person: str  # person id
    name: str
    phone: str | None
    why: str = ""  # "deputy for <id>" when standing in for someone absent


@dataclass(frozen=True, slots=True)
class GridStep:
    grid: str  # "point:xiaxi-slope", "village:xiaxi", "township", …
    callees: tuple[Callee, ...]


@dataclass(frozen=True, slots=True)
class WarnState:
    level: Level
    round: int  # a raise starts a new round from the bottom of the grid
    step: int  # index into the chain of the step called last
    due_at: int | None  # acknowledgement deadline; None: nothing pending
    acked_at: int | None = None
    acked_by: str | None = None
    acked_via: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    step: int
    grid: str  # grid step, or "duty" for the duty officer
    callee: Callee
    why: str  # issued, raised, escalated, duty
    due_at: int


@dataclass(frozen=True, slots=True)
class Plan:
    state: WarnState
    calls: tuple[Call, ...]


DEFAULT_DEADLINES: Mapping[Level, int] = {
    Level.RED: 5 * 60_000,
    Level.ORANGE: 10 * 60_000,
    Level.YELLOW: 30 * 60_000,
    Level.BLUE: 60 * 60_000,
}


def _round_calls(
    level: Level,
    step: int,
    why: str,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    deadlines: Mapping[Level, int],
    with_duty: bool,
) -> tuple[tuple[Call, ...], int | None]:
    due = now + deadlines.get(level, DEFAULT_DEADLINES[level])
    calls: list[Call] = []
    seen: set[str] = set()
    if chain:
        g = chain[step]
        for c in g.callees:
            if c.person not in seen:
                seen.add(c.person)
                calls.append(Call(step, g.grid, c, why, due))
    if with_duty and duty is not None and duty.person not in seen:
        calls.append(Call(step, "duty", duty, "duty", due))
    return tuple(calls), (due if calls else None)


def issue(
    level: Level,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    deadlines: Mapping[Level, int] = DEFAULT_DEADLINES,
    *,
    round_: int = 1,
    why: str = "issued",
) -> Plan:
    """A warning issued (or raised: a new round): call the point's step; orange and red
    call the duty officer at once."""
    calls, due = _round_calls(
        level, 0, why, now, chain, duty, deadlines, with_duty=level >= Level.ORANGE or not chain
    )
    return Plan(WarnState(level, round_, 0, due), calls)


def raise_level(
    state: WarnState,
    level: Level,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    deadlines: Mapping[Level, int] = DEFAULT_DEADLINES,
) -> Plan:
    return issue(level, now, chain, duty, deadlines, round_=state.round + 1, why="raised")


def lower_level(state: WarnState, level: Level) -> WarnState:
    """A person (or auto_lower) lowered the warning: no new calls; deadlines stay."""
    return replace(state, level=level)


def acknowledge(state: WarnState, now: int, by: str, via: str) -> WarnState:
    return replace(state, due_at=None, acked_at=now, acked_by=by, acked_via=via)


def on_tick(
    state: WarnState,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    deadlines: Mapping[Level, int] = DEFAULT_DEADLINES,
) -> Plan | None:
    """Nothing, or the escalation that is due: the next step up plus the duty officer."""
    if state.due_at is None or now < state.due_at:
        return None
    step = min(state.step + 1, len(chain) - 1) if chain else 0
    calls, due = _round_calls(
        state.level, step, "escalated", now, chain, duty, deadlines, with_duty=True
    )
    return Plan(replace(state, step=step, due_at=due), calls)
