"""The threshold rule and its tickets, stepped through a fake clock.

Each case feeds values one per minute to one series and checks the level transitions
and what happens to the ticket of that series.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ingest import Batch, Ingestor
from gateway.model import FLAG_OUT_OF_RANGE, Level, Reading
from gateway.store import Store
from rules.evaluator import RuleSet, SeriesState, evaluate
from rules.model import ThresholdRule

B, Y, O, R = Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED
T0 = 1_780_000_000_000
MIN = 60_000

RAIN = ThresholdRule(
    id="rain",
    name="短时强降雨",
    metric="rain_mm",
    direction="above",
    thresholds=((B, 2.0), (Y, 5.0), (O, 8.0), (R, 12.0)),
)
LOW_WATER = ThresholdRule(
    id="low",
    name="low",
    metric="level_m",
    direction="below",
    thresholds=((B, 1.0), (R, 0.5)),
)


@pytest.mark.parametrize(
    ("rule", "values", "levels"),
    [
        (RAIN, [0, 1.9, 2.0, 2.1, 3], [None, None, B, B, B]),
        (RAIN, [0, 5, 8, 12, 100], [None, Y, O, R, R]),
        (RAIN, [12, 7, 0], [R, Y, None]),
        (LOW_WATER, [2, 1.0, 0.7, 0.5, 3], [None, B, B, R, None]),
    ],
)
def test_level_for(rule: ThresholdRule, values: list[float], levels: list[Level | None]) -> None:
    assert [rule.level_for(v) for v in values] == levels


def series(values: list[float], device: str = "rg-01", start: int = T0) -> list[Reading]:
    return [Reading(device, "rain_mm", start + i * MIN, v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("values", "transitions"),
    [
        # opening on the crossing, not on every sample in the level
        ([0, 1, 2.5, 3, 4, 3], [(None, B)]),
        ([0, 6, 6, 9, 13], [(None, Y), (Y, O), (O, R)]),
        ([3, 0, 3], [(None, B), (B, None), (None, B)]),
        ([9, 4, 1], [(None, O), (O, B), (B, None)]),
        ([0, 0, 0], []),
    ],
)
def test_transitions_only_on_crossings(
    values: list[float], transitions: list[tuple[Level | None, Level | None]]
) -> None:
    ev = evaluate(RuleSet([RAIN]), {}, series(values), now=T0 + 10 * MIN)
    assert [(t.previous, t.level) for t in ev.transitions] == transitions
    assert all(t.at == T0 + 10 * MIN for t in ev.transitions)


def test_state_carries_across_batches_and_late_readings_are_not_judged() -> None:
    rs = RuleSet([RAIN])
    first = evaluate(rs, {}, series([3]), now=T0)
    assert [t.level for t in first.transitions] == [B]
    state = dict(first.updates)
    # the same level in a later batch is no crossing
    again = evaluate(rs, state, series([4], start=T0 + MIN), now=T0 + MIN)
    assert again.transitions == ()
    state.update(again.updates)
    # a late reading older than what was judged is stored but not re-judged
    late = evaluate(rs, state, series([20], start=T0 - MIN), now=T0 + 2 * MIN)
    assert late.transitions == () and late.updates == {}
    assert state[("rain", "rg-01", "rain_mm")] == SeriesState(B, T0 + MIN)


def test_out_of_order_batch_is_judged_in_time_order() -> None:
    readings = [Reading("rg-01", "rain_mm", T0 + 2 * MIN, 0), Reading("rg-01", "rain_mm", T0, 6)]
    ev = evaluate(RuleSet([RAIN]), {}, readings, now=T0)
    assert [(t.previous, t.level) for t in ev.transitions] == [(None, Y), (Y, None)]


def test_flagged_readings_and_other_scopes_are_ignored() -> None:
    scoped = ThresholdRule("r2", "x", "rain_mm", "above", ((B, 1.0),), frozenset({"rg-02"}))
    readings = [
        Reading("rg-01", "rain_mm", T0, 400, FLAG_OUT_OF_RANGE),  # a broken gauge
        Reading("rg-01", "rain_mm", T0 + MIN, 1.5),  # rg-01 is outside r2's scope
        Reading("rg-01", "battery_v", T0, 99),  # no rule for the metric
    ]
    ev = evaluate(RuleSet([RAIN, scoped]), {}, readings, now=T0)
    assert ev.transitions == ()
    assert list(ev.updates) == [("rain", "rg-01", "rain_mm")]


# --- the same, through the store: tickets open on a crossing and are raised -----------


@pytest.fixture
def ingestor(tmp_path: Path) -> Ingestor:
    store = Store(tmp_path / "t.db")
    store.register_devices(["rg-01", "rg-02"])
    return Ingestor(store, RuleSet([RAIN]))


def feed(ing: Ingestor, values: list[float], device: str = "rg-01", start: int = T0) -> None:
    for i, r in enumerate(series(values, device, start)):
        ing.commit(Batch(readings=[r]), now=start + i * MIN)


def test_one_ticket_per_series_raised_not_reopened(ingestor: Ingestor) -> None:
    feed(ingestor, [0, 3, 4, 6, 2, 9, 1, 0])
    tickets = ingestor.store.tickets()
    assert len(tickets) == 1
    t = tickets[0]
    assert (t.level, t.state, t.rule, t.device, t.metric) == (
        O,
        "discovered",
        "rain",
        "rg-01",
        "rain_mm",
    )
    assert t.title == "短时强降雨 橙色"
    assert t.opened_at == T0 + MIN
    kinds = [(e.kind, e.level) for e in ingestor.store.events(t.id)]
    assert kinds == [
        ("opened", B),
        ("raised", Y),
        ("level_changed", B),
        ("raised", O),
        ("condition_cleared", None),
    ]


def test_each_series_gets_its_own_ticket(ingestor: Ingestor) -> None:
    feed(ingestor, [3], "rg-01")
    feed(ingestor, [6], "rg-02")
    assert sorted((t.device, t.level) for t in ingestor.store.tickets()) == [
        ("rg-01", B),
        ("rg-02", Y),
    ]


def test_rule_state_survives_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.register_devices(["rg-01"])
    feed(Ingestor(store, RuleSet([RAIN])), [3])
    store.close()
    again = Ingestor(Store(tmp_path / "t.db"), RuleSet([RAIN]))
    feed(again, [4], start=T0 + MIN)  # still blue: no new crossing after the restart
    assert [(t.level, len(again.store.events(t.id))) for t in again.store.tickets()] == [(B, 1)]
