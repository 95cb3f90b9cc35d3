"""Every rule kind stepped through a fake clock (table-driven)."""

from __future__ import annotations

import pytest

from gateway.core.model import FLAG_JUMP, FLAG_OUT_OF_RANGE, FLAG_STUCK, Level
from rules.evaluator import State, evaluate, screen, tick
from rules.faults import FaultSpec
from rules.model import (
    AccumulationRule,
    CompoundRule,
    Condition,
    DeviceInfo,
    NoDataRule,
    RateRule,
    Scope,
    ThresholdRule,
    Timing,
    Window,
    level_with_clear,
)
from tests.unit.rules.rules_helpers import HOUR, MIN, T0, B, O, R, Y, levels, readings, ruleset, run

RAIN = ThresholdRule(
    "rain", "短时强降雨", "rain_mm", "above", ((B, 2.0), (Y, 5.0), (O, 8.0), (R, 12.0))
)


# --- threshold -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1, 2.5, 3, 4, 3], [(2, B)]),  # opening on the crossing, not every sample
        ([0, 6, 6, 9, 13], [(1, Y), (3, O), (4, R)]),
        ([3, 0, 3], [(0, B), (1, None), (2, B)]),
        ([9, 4, 1], [(0, O), (1, B), (2, None)]),
        ([0, 0, 0], []),
        ([2.0, 1.999], [(0, B), (1, None)]),  # the line itself counts
    ],
)
def test_threshold_crossings(values: list[float], expected: list[tuple[int, Level | None]]) -> None:
    assert levels(run(ruleset(RAIN), readings(values))) == expected


def test_below_rules() -> None:
    low = ThresholdRule("low", "低水位", "level_m", "below", ((B, 1.0), (R, 0.5)))
    rows = readings([2, 1.0, 0.7, 0.5, 3], metric="level_m")
    assert levels(run(ruleset(low), rows)) == [(1, B), (3, R), (4, None)]


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [
        (4.8, Y, Y),  # within the clear band below yellow: stays yellow
        (4.4, Y, B),  # left the band: down to blue
        (1.8, Y, B),  # blue's band holds
        (1.4, B, None),
        (6.0, B, Y),  # rising needs no band
        (4.9, None, B),  # no level held: plain thresholds
    ],
)
def test_clear_band(value: float, current: Level | None, expected: Level | None) -> None:
    assert level_with_clear(RAIN.limits, "above", value, current, 0.5) == expected


def test_hovering_at_the_line_does_not_flap() -> None:
    rule = ThresholdRule("r", "r", "rain_mm", "above", ((Y, 5.0),), clear=0.5)
    rows = readings([4.9, 5.1, 4.95, 5.05, 4.8, 5.2, 4.6, 4.4])
    assert levels(run(ruleset(rule), rows)) == [(1, Y), (7, None)]
    plain = ThresholdRule("r", "r", "rain_mm", "above", ((Y, 5.0),))
    assert len(levels(run(ruleset(plain), rows))) == 6


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([6] * 12, [(10, Y)]),  # held 10 minutes: reached at the 10th minute
        ([6, 6, 6, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6], [(14, Y)]),  # interrupted: restarts
        ([6, 6, 6, 6, 6, 0, 0], []),  # never long enough
        ([6] * 5 + [9] * 7, [(10, O)]),  # rising further while pending: the level then
    ],
)
def test_for(values: list[float], expected: list[tuple[int, Level | None]]) -> None:
    rule = ThresholdRule(
        "r", "r", "rain_mm", "above", ((Y, 5.0), (O, 8.0)), timing=Timing(10 * MIN)
    )
    assert levels(run(ruleset(rule), readings(values))) == expected


def test_for_completes_on_a_tick_without_new_data() -> None:
    rule = ThresholdRule("r", "r", "rain_mm", "above", ((Y, 5.0),), timing=Timing(10 * MIN))
    rs, st = ruleset(rule), State()
    assert evaluate(rs, st, readings([6]), T0) == []
    assert tick(rs, st, T0 + 9 * MIN) == []
    [t] = tick(rs, st, T0 + 10 * MIN)
    assert (t.level, t.at) == (Y, T0 + 10 * MIN)


def test_keep_for() -> None:
    rule = ThresholdRule("r", "r", "rain_mm", "above", ((Y, 5.0),), timing=Timing(0, 30 * MIN))
    rows = readings([6, 0, 0, 6, 0] + [0] * 40)
    # cleared only after 30 minutes below; the return at minute 3 cancels the countdown
    assert levels(run(ruleset(rule), rows)) == [(0, Y), (34, None)]


def test_keep_for_expires_on_a_tick() -> None:
    rule = ThresholdRule("r", "r", "rain_mm", "above", ((Y, 5.0),), timing=Timing(0, 30 * MIN))
    rs, st = ruleset(rule), State()
    evaluate(rs, st, readings([6, 0]), T0 + MIN)
    assert tick(rs, st, T0 + 30 * MIN) == []
    [t] = tick(rs, st, T0 + 31 * MIN)
    assert t.level is None and t.previous == Y


def test_late_readings_do_not_move_a_threshold() -> None:
    rs, st = ruleset(RAIN), State()
    evaluate(rs, st, readings([0], start=T0 + 10 * MIN), T0)
    assert evaluate(rs, st, readings([20], start=T0), T0) == []
    assert st.late_dropped == 1


def test_scope_and_index() -> None:
    scoped = ThresholdRule(
        "s", "s", "rain_mm", "above", ((B, 1.0),), scope=Scope(frozenset({"rg-02"}))
    )
    rs = ruleset(RAIN, scoped)
    assert [r.id for r in rs.rules_for("rg-01", "rain_mm")] == ["rain"]
    assert [r.id for r in rs.rules_for("rg-02", "rain_mm")] == ["rain", "s"]
    assert rs.rules_for("rg-01", "battery_v") == ()


# --- accumulation: the county flash-flood plan ---------------------------------------------

PLAN = AccumulationRule(
    "flash-flood",
    "山洪灾害雨量预警",
    "rain_mm",
    (
        Window(1 * HOUR, ((B, 35), (Y, 45), (O, 60), (R, 80))),
        Window(3 * HOUR, ((B, 55), (Y, 75), (O, 100), (R, 120))),
        Window(6 * HOUR, ((B, 70), (Y, 95), (O, 120), (R, 150))),
        Window(24 * HOUR, ((B, 100), (Y, 130), (O, 160), (R, 200))),
    ),
)


@pytest.mark.parametrize(
    ("values", "step", "expected"),
    [
        ([6.0] * 7, 10 * MIN, [(50, B)]),  # 36 mm within the hour at minute 50
        ([0.0] * 6, 10 * MIN, []),
        # 1 h: 10 mm every 10 min -> 60 mm in an hour (orange), via blue and yellow
        ([10.0] * 6, 10 * MIN, [(30, B), (40, Y), (50, O)]),
        # steady 20 mm/h: the 1 h window never reaches 35; eleven readings in 3 h reach 55
        ([5.0] * 13, 15 * MIN, [(150, B)]),
    ],
)
def test_accumulation_windows(
    values: list[float], step: int, expected: list[tuple[int, Level | None]]
) -> None:
    assert levels(run(ruleset(PLAN), readings(values, step=step))) == expected


def test_window_edges_are_half_open() -> None:
    rule = AccumulationRule("a", "a", "rain_mm", (Window(HOUR, ((B, 10.0),)),))
    # 5 at 0, 5 at 60 min: the reading exactly one window ago has left the window
    assert levels(run(ruleset(rule), readings([5, None, 5], step=30 * MIN))) == []
    # 5 at 0, 5 at 59 min: both inside
    rows = readings([5], start=T0) + readings([5], start=T0 + 59 * MIN)
    assert levels(run(ruleset(rule), rows)) == [(59, B)]


def test_reason_names_window_value_and_threshold() -> None:
    [t] = run(ruleset(PLAN), readings([10.0] * 4, step=10 * MIN))
    assert t.reason_zh == "1小时累计rain_mm 40 ≥ 蓝色阈值 35"
    assert t.reason_en == "60 min total rain_mm 40 ≥ blue threshold 35"
    assert t.value == 40


def test_counter_source_with_daily_reset_at_0800_local() -> None:
    rule = AccumulationRule(
        "c", "c", "rain_mm", (Window(3 * HOUR, ((B, 20.0), (Y, 30.0))),), "counter"
    )
    # a cumulative gauge: 100 → 112 before 08:00, reset to 0 at 08:00, then 0 → 15
    start = T0 + 7 * HOUR + 30 * MIN  # 07:30 local
    values = [100, 104, 108, 112, 0, 5, 10, 15]
    rows = readings(values, step=10 * MIN, start=start)
    # increments: 4, 4, 4, (reset) 0, 5, 5, 5 -> running 3 h sum 12 12 17 22 27
    got = levels(run(ruleset(rule), rows))
    assert got == [(7 * 60 + 30 + 60, B)]


def test_counter_reboot_mid_day_counts_from_zero() -> None:
    rule = AccumulationRule("c", "c", "rain_mm", (Window(HOUR, ((B, 9.0),)),), "counter")
    rows = readings([50, 53, 56, 2, 6], step=10 * MIN)  # rebooted between 56 and 2
    # increments 3, 3, 2, 4 -> 12 by the last reading; reached blue (>= 9) at 40 min
    assert levels(run(ruleset(rule), rows)) == [(30, None)] * 0 + [(40, B)]


def test_late_readings_within_lateness_go_into_their_window() -> None:
    rule = AccumulationRule("a", "a", "rain_mm", (Window(HOUR, ((B, 35.0),)),))
    rs = ruleset(rule, lateness_ms=HOUR)
    rows = readings([10, None, 10, 10], step=10 * MIN)  # the 10-minute one arrives last
    late = readings([10], start=T0 + 10 * MIN)
    got = run(rs, rows + late)
    assert levels(got) == [(30, B)]  # reached when the late one filled the window
    assert got[0].at == late[0].ts and got[0].value == 40


def test_readings_older_than_lateness_are_counted_not_judged() -> None:
    rule = AccumulationRule("a", "a", "rain_mm", (Window(24 * HOUR, ((B, 30.0),)),))
    rs, st = ruleset(rule, lateness_ms=HOUR), State()
    evaluate(rs, st, readings([10], start=T0 + 3 * HOUR), T0)
    assert evaluate(rs, st, readings([50], start=T0), T0) == []
    assert st.late_dropped == 1


# --- rate of change ---------------------------------------------------------------------

CRACK = RateRule(
    "crack-rate",
    "裂缝变化速率",
    "crack_mm",
    6 * HOUR,
    24 * HOUR,
    "d",
    "above",
    ((B, 1.0), (Y, 3.0), (O, 10.0), (R, 30.0)),
)


@pytest.mark.parametrize(
    ("per_hour", "expected"),
    [
        (0.01, []),  # 0.24 mm/day: creeping
        (0.05, [(120, B)]),  # 1.2 mm/day, known once three points are in
        (0.2, [(120, Y)]),  # 4.8 mm/day
        (2.0, [(120, R)]),  # 48 mm/day
    ],
)
def test_rate_levels(per_hour: float, expected: list[tuple[int, Level | None]]) -> None:
    rows = readings([12 + per_hour * i for i in range(8)], metric="crack_mm", step=HOUR)
    assert levels(run(ruleset(CRACK), rows)) == expected


def test_rate_acceleration() -> None:
    rule = RateRule(
        "acc",
        "加速",
        "crack_mm",
        3 * HOUR,
        24 * HOUR,
        "d",
        "above",
        ((R, 1000.0),),
        accel_limits=((O, 20.0),),
        min_points=3,
    )
    # steady 1 mm/day for a while, then the slope rises quickly
    values = [10 + i / 24 for i in range(6)] + [10.5, 11.5, 13, 15.5, 19]
    got = levels(run(ruleset(rule), readings(values, metric="crack_mm", step=HOUR)))
    assert got and got[0][1] == O


# --- no data, faults -------------------------------------------------------------------


def test_no_data_turns_a_silent_device_offline_and_back() -> None:
    rule = NoDataRule("silent", "设备离线", None, 30 * MIN)
    devices = {"rg-01": DeviceInfo("rg-01", "p1", units=(("rain_mm", "mm"),))}
    rs, st = ruleset(rule, devices=devices), State()
    assert tick(rs, st, T0) == []  # the count starts now
    assert tick(rs, st, T0 + 30 * MIN) == []
    [off] = tick(rs, st, T0 + 31 * MIN)
    assert (off.kind, off.active, off.device, off.point) == ("fault", True, "rg-01", "p1")
    assert tick(rs, st, T0 + 60 * MIN) == []  # once, not again
    [on] = evaluate(rs, st, readings([0], start=T0 + 61 * MIN), T0 + 61 * MIN)
    assert (on.kind, on.active) == ("fault", False)


SPEC = FaultSpec(min=0, max=50, stuck_after_ms=2 * HOUR, max_jump=20, fault_below=None)


@pytest.mark.parametrize(
    ("values", "flags", "faults"),
    [
        ([1, 400, 1], [0, FLAG_OUT_OF_RANGE, 0], [("range", True), ("range", False)]),
        ([1, -3], [0, FLAG_OUT_OF_RANGE], [("range", True)]),
        # a jump from 1 to 45 is impossible; three mutually plausible readings accept it
        ([1, 45, 44, 46, 45], [0, FLAG_JUMP, FLAG_JUMP, 0, 0], [("jump", True), ("jump", False)]),
        ([1, 45, 2], [0, FLAG_JUMP, 0], [("jump", True), ("jump", False)]),
    ],
)
def test_fault_screening(
    values: list[float], flags: list[int], faults: list[tuple[str, bool]]
) -> None:
    rs, st = ruleset(RAIN, faults={("rg-01", "rain_mm"): SPEC}), State()
    out, changes = screen(rs, st, readings(values), T0)
    assert [r.flags for r in out] == flags
    assert [(c.rule.split(":")[1], c.active) for c in changes] == faults
    assert all(c.kind == "fault" for c in changes)


def test_stuck_value() -> None:
    rs, st = (
        ruleset(faults={("wl-01", "level_m"): FaultSpec(0, 20, stuck_after_ms=2 * HOUR)}),
        State(),
    )
    out, changes = screen(
        rs, st, readings([3.2] * 5 + [3.3], metric="level_m", device="wl-01", step=HOUR), T0
    )
    assert [r.flags for r in out] == [0, 0, FLAG_STUCK, FLAG_STUCK, FLAG_STUCK, 0]
    assert [(c.rule, c.active) for c in changes] == [("fault:stuck", True), ("fault:stuck", False)]


def test_low_battery_is_a_fault_not_a_flag() -> None:
    rs, st = ruleset(faults={("rg-01", "battery_v"): FaultSpec(0, 15, fault_below=3.5)}), State()
    out, changes = screen(rs, st, readings([3.9, 3.4, 3.6], metric="battery_v"), T0)
    assert [r.flags for r in out] == [0, 0, 0]
    assert [(c.rule, c.active) for c in changes] == [
        ("fault:low_supply", True),
        ("fault:low_supply", False),
    ]


def test_a_broken_gauge_never_raises_a_hazard() -> None:
    rs = ruleset(RAIN, PLAN, faults={("rg-01", "rain_mm"): SPEC})
    got = run(rs, readings([0, 400, 0, 399, 0], step=5 * MIN))
    assert [t.kind for t in got] == ["fault"] * 4
    assert levels(got) == []


# --- compound --------------------------------------------------------------------------


def test_compound_at_a_monitoring_point() -> None:
    both = CompoundRule(
        "slope-red",
        "滑坡综合预警",
        "all",
        (Condition("flash-flood", O), Condition("crack-rate", Y)),
        R,
    )
    devices = {
        "rg-01": DeviceInfo("rg-01", "slope"),
        "cm-01": DeviceInfo("cm-01", "slope"),
        "cm-09": DeviceInfo("cm-09", "elsewhere"),
    }
    rs, st = ruleset(PLAN, CRACK, both, devices=devices), State()
    rain = readings([10.0] * 6, step=10 * MIN)  # 60 mm in the hour: orange
    got = run(rs, rain, state=st)
    assert [t.rule for t in got] == ["flash-flood"] * 3
    far = readings([12 + 0.2 * i for i in range(4)], device="cm-09", metric="crack_mm", step=HOUR)
    assert [t.point for t in run(rs, far, state=st)] == ["elsewhere"]  # crack elsewhere: no red
    near = readings([12 + 0.2 * i for i in range(4)], device="cm-01", metric="crack_mm", step=HOUR)
    got = run(rs, near, state=st)
    red = [t for t in got if t.rule == "slope-red"]
    assert [(t.level, t.point, t.device) for t in red] == [(R, "slope", "")]
    assert "全部满足" in red[0].reason_zh
