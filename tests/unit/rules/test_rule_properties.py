"""Properties of the accumulation rule, checked against brute force (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.model import Level, Reading
from rules.evaluator import RuleSet, State, evaluate
from rules.model import AccumulationRule, Window, level_for
from tests.unit.rules.rules_helpers import HOUR, MIN, T0, B, O, R, Y

RULE = AccumulationRule(
    "acc",
    "累计",
    "rain_mm",
    (
        Window(HOUR, ((B, 20.0), (Y, 30.0), (O, 45.0), (R, 60.0))),
        Window(3 * HOUR, ((B, 40.0), (Y, 60.0), (O, 80.0), (R, 100.0))),
    ),
)
LATENESS = HOUR

series = st.lists(
    st.tuples(st.integers(0, 6 * 60), st.sampled_from([0.0, 0.5, 1.0, 2.5, 5.0, 10.0])),
    min_size=1,
    max_size=60,
    unique_by=lambda p: p[0],
).map(lambda pts: sorted(pts))


def brute(points: list[tuple[int, float]], end: int) -> Level | None:
    best: Level | None = None
    for w in RULE.windows:
        total = sum(v for m, v in points if end - w.ms < T0 + m * MIN <= end)
        level = level_for(w.limits, "above", round(total, 6))
        if level is not None and (best is None or level > best):
            best = level
    return best


def feed(rows: list[Reading]) -> tuple[State, list[Level | None]]:
    rs = RuleSet([RULE], lateness_ms=LATENESS)
    state = State()
    reached: list[Level | None] = []
    for r in rows:
        reached += [t.level for t in evaluate(rs, state, [r], r.ts)]
    return state, reached


def rows_of(points: list[tuple[int, float]]) -> list[Reading]:
    return [Reading("rg-01", "rain_mm", T0 + m * MIN, v) for m, v in points]


@settings(max_examples=150, deadline=None)
@given(series)
def test_level_equals_brute_force_at_every_reading(points: list[tuple[int, float]]) -> None:
    rs = RuleSet([RULE], lateness_ms=LATENESS)
    state = State()
    for i, r in enumerate(rows_of(points)):
        evaluate(rs, state, [r], r.ts)
        assert state.acc[("acc", "rg-01", "rain_mm")].levels.raw == brute(points[: i + 1], r.ts)


@settings(max_examples=400, deadline=None)
@given(series, st.randoms(use_true_random=False))
def test_reordering_within_lateness_keeps_the_levels_reached(
    points: list[tuple[int, float]], rnd: random.Random
) -> None:
    rows = rows_of(points)
    # shuffle locally: each reading may arrive up to 59 minutes late
    shuffled = sorted(rows, key=lambda r: r.ts + rnd.randint(0, 59) * MIN)
    in_order, reached = feed(rows)
    late, reached_late = feed(shuffled)
    key = ("acc", "rg-01", "rain_mm")
    assert late.acc[key].levels.level == in_order.acc[key].levels.level
    highest = max((lv for lv in reached if lv), default=None)
    assert max((lv for lv in reached_late if lv), default=None) == highest
    assert late.late_dropped == 0


@settings(max_examples=100, deadline=None)
@given(series, st.floats(0, 500, allow_nan=False))
def test_a_reading_older_than_every_window_changes_nothing(
    points: list[tuple[int, float]], value: float
) -> None:
    rows = rows_of(points)
    state, _ = feed(rows)
    newest = rows[-1].ts
    ancient = Reading("rg-01", "rain_mm", newest - RULE.span_ms - LATENESS - MIN, value)
    rs = RuleSet([RULE], lateness_ms=LATENESS)
    assert evaluate(rs, state, [ancient], newest) == []
    assert state.late_dropped == 1


def test_a_peak_inside_the_past_is_reached_when_the_late_reading_fills_it() -> None:
    # 10 mm at 0 and at 40 min give 20 in the hour ending at 40 (blue); by 70 min the
    # first has left the window. The 40-minute reading arrives after the 70-minute one.
    rows = rows_of([(0, 10.0), (70, 0.0), (40, 10.0)])
    rule = AccumulationRule("acc", "累计", "rain_mm", (Window(HOUR, ((B, 20.0),)),))
    rs, state = RuleSet([rule], lateness_ms=LATENESS), State()
    got = [t for r in rows for t in evaluate(rs, state, [r], r.ts)]
    assert [(t.level, (t.ts - T0) // MIN) for t in got] == [(B, 40), (None, 70)]
