"""The call-and-acknowledge loop (叫应) and its escalation (督导) as a pure planner.

A warning is called up the grid of its monitoring point by a calling policy per level
(`LevelPolicy`, from `[tickets.calling.<level>]`): the point's responders first (and the
duty officer at once where the policy says so), on the channels of the level, with a voice
call `voice_after` the start and `redials` redials `redial_every` apart. Whoever has not
answered `not_reached` after the wave started counts as not reached, and the next wave
calls, at once, whom `escalate` names: the deputies of those not reached, the next grid
level up, the duty officer, the township leaders. Everyone is called at most once per
round (one message per person per round per channel); when a wave finds nobody new the
not-reached list stays with the duty room (the warning is `exhausted`) instead of
re-calling the same people. A raise starts a new round from the point. Time is an
argument; the caller persists the state and the calls of a plan in one transaction, so a
restart neither repeats nor loses a step: an overdue step fires once, on the first tick
after the restart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.core.model import Level


@dataclass(frozen=True, slots=True)
class Callee:
    person: str  # person id
    name: str
    phone: str | None
    why: str = ""  # "deputy for <id>" when standing in for someone absent
    deputy: Callee | None = None  # called when this person is not reached


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
    exhausted: bool = False  # a wave found nobody new: the not-reached list is the duty room's


@dataclass(frozen=True, slots=True)
class LevelPolicy:
    """Times in ms. `voice_after` None: no voice call at this level."""

    not_reached: int
    voice_after: int | None = None
    redials: int = 3
    redial_every: int = 100_000
    duty_at_once: bool = False
    escalate: tuple[str, ...] = ("deputy", "up", "duty")
    channels: tuple[str, ...] = ("sms", "mqtt", "robot")


@dataclass(frozen=True, slots=True)
class Call:
    step: int
    grid: str  # grid step, or "duty" for the duty officer
    callee: Callee
    why: str  # issued, raised, escalated, deputy, duty, leader
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

# county practice: a voice call within 3 minutes, 3 redials within 5 minutes, then up
DEFAULT_POLICY: Mapping[Level, LevelPolicy] = {
    Level.RED: LevelPolicy(
        5 * 60_000,
        0,
        duty_at_once=True,
        escalate=("deputy", "up", "duty", "leader"),
        channels=("sms", "mqtt", "robot", "broadcast"),
    ),
    Level.ORANGE: LevelPolicy(
        10 * 60_000,
        60_000,
        duty_at_once=True,
        escalate=("deputy", "up", "duty", "leader"),
        channels=("sms", "mqtt", "robot", "broadcast"),
    ),
    Level.YELLOW: LevelPolicy(30 * 60_000, 180_000),
    Level.BLUE: LevelPolicy(60 * 60_000, None),
}


def _add(
    calls: list[Call], seen: set[str], step: int, grid: str, c: Callee, why: str, due: int
) -> None:
    if c.person not in seen:
        seen.add(c.person)
        calls.append(Call(step, grid, c, why, due))


def issue(
    level: Level,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    policy: Mapping[Level, LevelPolicy] = DEFAULT_POLICY,
    *,
    round_: int = 1,
    why: str = "issued",
) -> Plan:
    """A warning issued (or raised: a new round): call the point's step, and the duty
    officer at once where the level's policy says so (or when the point has nobody)."""
    pol = policy.get(level, DEFAULT_POLICY[level])
    due = now + pol.not_reached
    calls: list[Call] = []
    seen: set[str] = set()
    if chain:
        for c in chain[0].callees:
            _add(calls, seen, 0, chain[0].grid, c, why, due)
    if duty is not None and (pol.duty_at_once or not chain):
        _add(calls, seen, 0, "duty", duty, "duty", due)
    return Plan(WarnState(level, round_, 0, due if calls else None), tuple(calls))


def raise_level(
    state: WarnState,
    level: Level,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    policy: Mapping[Level, LevelPolicy] = DEFAULT_POLICY,
) -> Plan:
    return issue(level, now, chain, duty, policy, round_=state.round + 1, why="raised")


def lower_level(state: WarnState, level: Level) -> WarnState:
    """A person (or auto_lower) lowered the warning: no new calls; deadlines stay."""
    return replace(state, level=level)


def acknowledge(state: WarnState, now: int, by: str, via: str) -> WarnState:
    return replace(state, due_at=None, acked_at=now, acked_by=by, acked_via=via)


def stop(state: WarnState) -> WarnState:
    """Lifted: nothing more is due."""
    return replace(state, due_at=None)


def on_tick(
    state: WarnState,
    now: int,
    chain: Sequence[GridStep],
    duty: Callee | None,
    policy: Mapping[Level, LevelPolicy] = DEFAULT_POLICY,
    *,
    not_reached: Sequence[Callee] = (),
    called: Collection[str] = (),
    leaders: Sequence[Callee] = (),
) -> Plan | None:
    """Nothing, or the wave that is due: whom the level's `escalate` names, each at most
    once per round. `not_reached`: the callees of this round still unanswered; `called`:
    everyone called in this round so far. A wave with nobody new exhausts the warning."""
    if state.due_at is None or now < state.due_at:
        return None
    pol = policy.get(state.level, DEFAULT_POLICY[state.level])
    due = now + pol.not_reached
    step = min(state.step + 1, len(chain) - 1) if chain else 0
    calls: list[Call] = []
    seen = set(called)
    for kind in pol.escalate:
        if kind == "deputy":
            for c in not_reached:
                if c.deputy is not None:
                    _add(calls, seen, state.step, "deputy", c.deputy, "deputy", due)
        elif kind == "up" and chain and step > state.step:
            for c in chain[step].callees:
                _add(calls, seen, step, chain[step].grid, c, "escalated", due)
        elif kind == "duty" and duty is not None:
            _add(calls, seen, step, "duty", duty, "duty", due)
        elif kind == "leader":
            for c in leaders:
                _add(calls, seen, step, "township", c, "leader", due)
    if not calls:
        return Plan(replace(state, step=step, due_at=None, exhausted=True), ())
    return Plan(replace(state, step=step, due_at=due), tuple(calls))
