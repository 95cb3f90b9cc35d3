"""The evaluator's incremental structures against naive recomputation (issue #20's speed-ups).

- `SumWindow.nonneg_total` bounds every window's sum, and is None whenever a held amount
  is negative, over random sequences with late readings and pruning at window edges;
- `PointWindow.push` is `add` then `prune`, to the last bit, through compaction;
- the evaluator's compiled plans (rules per series, holding their state objects) give
  what a fresh evaluation gives after `load`, `forget`, a new rule set, or a restart from
  the persisted state, and a new series judges its first reading whatever its time.
"""

from __future__ import annotations

import random

import pytest

from gateway.core.model import Reading
from rules.evaluator import RuleSet, State, Transition, _cut, evaluate, tick
from rules.model import (
    AccumulationRule,
    Direction,
    Limits,
    RateRule,
    Rule,
    ThresholdRule,
    Window,
    level_for,
)
from rules.windows import PointWindow, SumWindow
from tests.unit.rules.rules_helpers import HOUR, MIN, T0, B, O, R, Y, ruleset

# (seed, amounts drawn from, share of late readings, prune every n points)
SUM_CASES = [
    (1, (0.0, 0.5, 1.0, 2.5), 0.0, 0),
    (2, (0.0, 0.5, 1.0, 2.5), 0.3, 0),
    (3, (0.0, 0.1, 0.2, 0.3), 0.3, 7),
    (4, (0.0, 1.0, -0.5), 0.2, 5),  # negative increments: no bound
    (5, (0.0, 0.0, 0.0, -1.0), 0.4, 3),
    (6, (1e-9, 3.3, 7.7), 0.5, 11),
]


@pytest.mark.parametrize(("seed", "amounts", "late", "prune_every"), SUM_CASES)
def test_sum_window_totals_and_bound_agree_with_a_naive_sum(
    seed: int, amounts: tuple[float, ...], late: float, prune_every: int
) -> None:
    rng = random.Random(seed)
    w = SumWindow()
    held: dict[int, float] = {}
    newest = 0
    for n in range(400):
        t = newest + MIN if rng.random() >= late or not held else newest - rng.randint(0, 90) * MIN
        a = rng.choice(amounts)
        assert w.add(t, a) == (t not in held)
        held.setdefault(t, a)
        newest = max(newest, t)
        if prune_every and n % prune_every == 0:
            before = newest - rng.choice([30, 60, 61, 120]) * MIN  # at and around the edges
            w.prune(before)
            held = {k: v for k, v in held.items() if k > before}
        assert list(w.ts) == sorted(held)
        for span in (MIN, 30 * MIN, HOUR, 3 * HOUR):
            end = newest - rng.choice([0, 0, 1, 17]) * MIN
            naive = sum(v for k, v in held.items() if end - span < k <= end)
            assert w.total(end - span, end) == pytest.approx(naive, abs=1e-9)
        bound = w.nonneg_total()
        if any(v < 0 for v in held.values()):
            assert bound is None
        else:
            assert bound is not None
            assert bound == pytest.approx(sum(held.values()), abs=1e-9)
            ends = rng.sample(list(w.ts), min(len(w.ts), 12))
            every = [w.total(s, e) for s in w.ts[::7] for e in ends]
            assert all(total <= bound for total in every)  # exactly, not approximately


def test_a_negative_amount_lifts_the_bound_only_while_it_is_held() -> None:
    w = SumWindow()
    for t, a in [(1, 1.0), (2, -1.0), (3, 2.0)]:
        w.add(t, a)
    assert w.nonneg_total() is None
    w.prune(1)
    assert w.nonneg_total() is None  # -1 at t=2 is still held
    w.prune(2)
    assert w.nonneg_total() == 2.0
    w.add(0, -5.0)  # a late negative amount before every held point
    assert w.nonneg_total() is None


@pytest.mark.parametrize(("seed", "per_ms", "window_ms"), [(1, MIN, HOUR), (2, HOUR, 6 * HOUR)])
def test_push_is_add_then_prune_to_the_last_bit(seed: int, per_ms: int, window_ms: int) -> None:
    rng = random.Random(seed)
    a, b = PointWindow(), PointWindow()
    t = T0
    for _ in range(2_000):  # long enough to compact (more than 64 pruned) many times
        t += rng.choice([MIN, MIN, 2 * MIN, 3 * HOUR, 0])  # 0: a repeated time, ignored
        v = rng.uniform(-50, 50)
        a.add(t, v, per_ms)
        a.prune(t - window_ms, per_ms)
        n = b.push(t, v, per_ms, t - window_ms)
        assert n == len(a) == len(b)
        assert (a.ts, a.values, a.origin, a.start) == (b.ts, b.values, b.origin, b.start)
        assert (a.sx, a.sy, a.sxx, a.sxy) == (b.sx, b.sy, b.sxx, b.sxy)
        assert a.slope() == b.slope()
        if n >= 2:
            assert round(b.slope_unrounded(n), 9) == b.slope()[0]


LINES: list[tuple[Direction, Limits]] = [
    ("above", ((B, 5.0), (R, 50.0))),
    ("above", ((B, 0.0),)),
    ("above", ((B, 1e6),)),
    ("below", ((B, -5.0),)),
    ("below", ((B, 0.3),)),
    ("above", ((B, 1e-9),)),
]


@pytest.mark.parametrize(("direction", "limits"), LINES)
def test_a_slope_beyond_the_cut_reaches_no_level_rounded(
    direction: Direction, limits: Limits
) -> None:
    rng = random.Random(7)
    cut = _cut(limits, direction, 1.0)
    line = limits[0][1]
    for _ in range(20_000):
        s = line + rng.choice([-1, 1]) * rng.choice([1e-12, 1e-10, 1e-9, 1e-7, 1e-6, 1e-3, 1.0])
        s *= rng.choice([1.0, 1.0 + 1e-15])
        beyond = s < cut if direction == "above" else s > cut
        if beyond:
            assert level_for(limits, direction, round(s, 9)) is None


RAIN = AccumulationRule(
    "acc", "累计", "rain_mm", (Window(HOUR, ((B, 20.0), (Y, 30.0))), Window(3 * HOUR, ((O, 50.0),)))
)
HOT = ThresholdRule("hot", "高", "rain_mm", "above", ((B, 10.0), (R, 30.0)), clear=1.0)
RISE = RateRule("rise", "涨", "rain_mm", HOUR, HOUR, "h", "above", ((B, 40.0),), min_points=2)


def _rows(seed: int, n: int = 300) -> list[Reading]:
    rng = random.Random(seed)
    out, t = [], T0
    for _ in range(n):
        t += rng.choice([MIN, MIN, 5 * MIN])
        late = rng.randint(0, 50) * MIN if rng.random() < 0.2 else 0
        out.append(
            Reading(
                rng.choice(["rg-01", "rg-02"]),
                "rain_mm",
                t - late,
                rng.choice([0.0, 0.5, 2.0, 6.0, 12.0, 35.0]),
            )
        )
    return out


def _feed(
    state: State,
    rows: list[Reading],
    rules: tuple[Rule, ...] = (RAIN, HOT, RISE),
    rs: RuleSet | None = None,
) -> list[Transition]:
    rs = rs or ruleset(*rules, lateness_ms=HOUR)
    out: list[Transition] = []
    for r in rows:
        out += evaluate(rs, state, [r], r.ts)
        out += tick(rs, state, r.ts + MIN)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_restored_state_continues_as_if_never_stopped(seed: int) -> None:
    rows = _rows(seed)
    half = len(rows) // 2
    whole = State()
    expected = _feed(whole, rows)
    first = State()
    before = _feed(first, rows[:half])
    restored = State()  # a restart: scalars from their JSON, windows refilled from readings
    for key in [*first.levels, *first.acc, *first.rate]:
        text = first.dump(key)
        assert text is not None
        restored.load(key, text)
    for key, acc in restored.acc.items():
        for r in sorted((r for r in rows[:half] if r.device == key[1]), key=lambda r: r.ts):
            acc.window.add(r.ts, r.value)  # older points than the window held, too
    for key, rate in restored.rate.items():
        newest = 0  # the readings the rate rule took (it skips late ones)
        for r in rows[:half]:
            if r.device == key[1] and r.ts > newest:
                newest = r.ts
                if r.ts > rate.levels.last_ts - HOUR:
                    rate.window.add(r.ts, r.value, HOUR)
    after = _feed(first, rows[half:])
    assert before + after == expected
    assert _feed(restored, rows[half:]) == after
    assert all(restored.acc[k].levels == first.acc[k].levels for k in first.acc)


def test_plans_follow_load_forget_and_a_new_rule_set() -> None:
    rows = _rows(9, 160)
    rs = ruleset(RAIN, HOT, RISE, lateness_ms=HOUR)  # one RuleSet: plans are kept
    state, reference = State(), State()
    assert _feed(state, rows[:60], rs=rs) == _feed(reference, rows[:60])
    for key in list(state.levels):
        text = state.dump(key)
        assert text is not None
        state.load(key, text)  # a new state object for the key (windows: the next test)
    assert _feed(state, rows[60:90], rs=rs) == _feed(reference, rows[60:90])
    assert state.levels == reference.levels
    state.forget({"acc", "rise"})  # "hot" removed: its keys start afresh
    reference.forget({"acc", "rise"})
    assert not [k for k in state.levels if k[0] == "hot"]
    assert _feed(state, rows[90:120], rs=rs) == _feed(reference, rows[90:120])
    assert state.levels == reference.levels
    fewer = ruleset(RAIN, RISE, lateness_ms=HOUR)  # a new rule set without "hot"
    assert _feed(state, rows[120:], rs=fewer) == _feed(reference, rows[120:], (RAIN, RISE))
    assert state.levels == reference.levels


@pytest.mark.parametrize("ts", [T0, 0, -MIN])
def test_a_new_series_judges_its_first_reading_whatever_its_time(ts: int) -> None:
    rs, state = ruleset(HOT), State()
    got = evaluate(rs, state, [Reading("rg-01", "rain_mm", ts, 12.0)], ts)
    assert [(t.level, t.ts) for t in got] == [(B, ts)]
    assert state.levels[("hot", "rg-01", "rain_mm")].last_ts == ts
    assert evaluate(rs, state, [Reading("rg-01", "rain_mm", ts, 40.0)], ts) == []  # repeated
    assert state.late_dropped == 1
