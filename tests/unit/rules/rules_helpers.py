"""Stepping rules through a fake clock, for the table-driven tests."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.core.model import Level, Reading
from rules.evaluator import RuleSet, State, Transition, evaluate, screen, tick
from rules.model import DeviceInfo, Rule

T0 = 1_782_835_200_000  # 2026-07-01T00:00:00+08:00 (16:00 UTC the day before)
MIN = 60_000
HOUR = 60 * MIN
B, Y, O, R = Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED


def readings(
    values: Sequence[float | None],
    *,
    device: str = "rg-01",
    metric: str = "rain_mm",
    step: int = MIN,
    start: int = T0,
) -> list[Reading]:
    """One reading per step; None leaves a gap."""
    return [
        Reading(device, metric, start + i * step, float(v))
        for i, v in enumerate(values)
        if v is not None
    ]


def ruleset(*rules: Rule, devices: dict[str, DeviceInfo] | None = None, **kw: object) -> RuleSet:
    return RuleSet(rules, devices, **kw)  # type: ignore[arg-type]


def run(
    rs: RuleSet,
    rows: Sequence[Reading],
    *,
    state: State | None = None,
    tick_every: int | None = None,
) -> list[Transition]:
    """Feed readings one at a time (now = their time), ticking between them if asked."""
    st = state if state is not None else State()
    out: list[Transition] = []
    last = None
    for r in rows:
        if tick_every and last is not None:
            t = last + tick_every
            while t < r.ts:
                out += tick(rs, st, t)
                t += tick_every
        flagged, faults = screen(rs, st, [r], r.ts)
        out += faults + evaluate(rs, st, flagged, r.ts)
        last = r.ts
    return out


def levels(ts: Sequence[Transition]) -> list[tuple[int, Level | None]]:
    """(minutes after T0, new level) of hazard transitions."""
    return [((t.ts - T0) // MIN, t.level) for t in ts if t.kind == "hazard"]
