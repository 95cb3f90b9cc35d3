"""The monthly report's figures for a scripted month pushed through the real commit path
(tests/unit/reports/report_month.py), checked against what the script did and against plain SQL
of the stored rows — never against the report code itself."""

from __future__ import annotations

import math
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import date

import pytest

from gateway.core.model import Level
from gateway.reports.monthly import Monthly, monthly
from gateway.reports.period import month_period
from tests.unit.reports.report_month import (
    BAD_CRACK,
    OUTAGE,
    STEP,
    TZ,
    Month,
    at,
    build,
    crack,
    level,
    rain,
)

JULY = (at(7, 1), at(8, 1))


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Month, Monthly]]:
    m = build(tmp_path_factory.mktemp("month"))
    conn = sqlite3.connect(f"file:{m.cfg.database.path}?mode=ro", uri=True)
    try:
        yield m, monthly(conn, m.cfg, month_period("2026-07"), at(8, 2), m.ruleset)
    finally:
        conn.close()


def sql(m: Month, query: str, *args: object) -> list[tuple[object, ...]]:
    return list(m.store.conn.execute(query, args).fetchall())


def july_steps() -> range:
    return range(JULY[0], JULY[1], STEP)


def nearest_rank(values: list[int], q: float) -> int:
    v = sorted(values)
    return v[math.ceil(q * len(v)) - 1]


def test_month_is_local_midnight_to_midnight() -> None:
    p = month_period("2026-07", "Asia/Shanghai")
    assert p.start == at(7, 1) and p.end == at(8, 1)
    assert p.start % 86_400_000 == 16 * 3_600_000  # 00:00 +08:00 is 16:00 UTC the day before
    assert month_period("2026-12").end == at(12, 1) + 31 * 86_400_000
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_period("2026-7")
    with pytest.raises(ValueError, match="2026-13"):
        month_period("2026-13")


def test_rainfall_storm_days_and_the_local_day_boundary(month: tuple[Month, Monthly]) -> None:
    _, r = month
    expected_total: dict[str, float] = defaultdict(float)
    daily: dict[tuple[str, date], float] = defaultdict(float)
    for ts in july_steps():
        for d in ("rg-01", "rg-02"):
            mm = rain(d, ts)
            expected_total[d] += mm
            local = (ts + 8 * 3_600_000) // 86_400_000  # Shanghai has no DST
            daily[(d, date.fromordinal(date(1970, 1, 1).toordinal() + local))] += mm
    gauges = {g.device: g for g in r.rain}
    assert {d: g.total_mm for d, g in gauges.items()} == pytest.approx(dict(expected_total))
    storms = sorted({day for (_, day), mm in daily.items() if mm >= 50})
    assert list(r.storm_days) == storms == [date(2026, 7, 5), date(2026, 7, 22)]
    assert gauges["rg-02"].storm_days == ()  # 48 mm: just short
    # 60 mm from 23:00 to 01:00 local is 30 + 30 in station time, though one UTC day
    assert gauges["rg-01"].daily[24] == pytest.approx(30.0)
    assert gauges["rg-01"].daily[25] == pytest.approx(30.0)
    assert gauges["rg-01"].max_day_mm == pytest.approx(
        max(v for (d, _), v in daily.items() if d == "rg-01")
    )


def test_water_level_maximum_against_the_rules_lines(month: tuple[Month, Monthly]) -> None:
    _, r = month
    [w] = r.water
    top = max(level(ts) for ts in july_steps() if not OUTAGE[1] <= ts < OUTAGE[2])
    assert w.max_m == pytest.approx(top) and top == 3.45
    assert w.lines == (
        (Level.BLUE, 3.0),
        (Level.YELLOW, 3.3),
        (Level.ORANGE, 3.6),
        (Level.RED, 4.0),
    )
    assert w.reached == Level.YELLOW


def test_crack_movement_skips_the_faulty_reading(month: tuple[Month, Monthly]) -> None:
    _, r = month
    [c] = r.crack
    good = [ts for ts in july_steps() if ts != BAD_CRACK]
    assert c.first_mm == pytest.approx(crack(good[0]))
    assert c.movement_mm == pytest.approx(crack(good[-1]) - crack(good[0]), abs=0.01)
    assert c.max_day == date(2026, 7, 22)


def test_device_availability_completeness_and_faults(month: tuple[Month, Monthly]) -> None:
    m, r = month
    devices = {a.device: a for a in r.devices}
    span = JULY[1] - JULY[0]
    for d in ("rg-01", "rg-02", "wl-01", "cm-01"):
        a = devices[d]
        assert a.expected == span // STEP
        assert a.received == m.script.readings[d]
        assert a.completeness == pytest.approx(m.script.readings[d] / (span // STEP))
    wl = devices["wl-01"]
    # silent from the report after 07:55 until 20:00: 12 h 5 min
    [outage] = wl.outages
    assert (outage.start, outage.end) == (OUTAGE[1] - STEP, OUTAGE[2])
    assert wl.uptime == pytest.approx(1 - (OUTAGE[2] - OUTAGE[1] + STEP) / span)
    assert devices["rg-01"].outages == () and devices["rg-01"].uptime == 1.0
    assert wl.faults == {"no_data": 1}
    assert devices["cm-01"].faults == {"range": 1}
    assert devices["hh-01"].interval_ms is None and devices["hh-01"].uptime is None


def test_warnings_and_hazard_tickets(month: tuple[Month, Monthly]) -> None:
    m, r = month
    # the script: orange at the slope on the 5th and 22nd, yellow at the river on the 18th
    # and at the slope on the 25th; all issued by the hourly rain rule
    assert r.warnings.total == 4
    assert r.warnings.by_level == {Level.BLUE: 0, Level.YELLOW: 2, Level.ORANGE: 2, Level.RED: 0}
    assert list(r.warnings.by_type) == ["小时雨量"]
    [(issued,)] = sql(
        m,
        "SELECT COUNT(*) FROM tickets WHERE kind = 'warning' AND opened_at >= ? AND opened_at < ?",
        *JULY,
    )
    assert issued == r.warnings.total
    h = r.hazards
    [(opened,)] = sql(
        m,
        "SELECT COUNT(*) FROM tickets WHERE kind = 'hazard' AND opened_at >= ? AND opened_at < ?",
        *JULY,
    )
    assert (
        h.opened == opened == 5
    )  # rain at the slope twice, at the river, the river level, a patrol
    assert h.by_source == {"小时雨量": 3, "巡查上报": 1, "河道水位超警": 1}
    assert (h.closed, h.dismissed) == (1, 1)
    # overdue: the patrol's yellow hazard (confirm within 4 h, never confirmed), the river
    # level (control within 24 h, never controlled), the 22nd's rain (orange: control 6 h)
    assert h.overdue == 3
    assert h.open_at_end == 3
    assert h.closure_rate == pytest.approx(2 / 5)
    # the 5th's ticket: opened 14:15, confirmed 15:20, controlled 16:20, rectified on the
    # 6th 10:00, written off on the 8th 10:00
    assert h.stage["close"].median_s == 48 * 3600
    assert h.stage["control"].median_s == 3600
    places = {p.id: p for p in r.points}
    assert places["slope"].hazards.opened == 3 and places["river"].hazards.opened == 2
    assert places["slope"].warnings.total == 3 and places["river"].warnings.total == 1
    assert {v.id: v.hazards.opened for v in r.villages} == {"xiaxi": 3, "shangping": 2}
    slope, river = places["slope"].hazards, places["river"].hazards
    assert (slope.closed, slope.overdue, slope.open_at_end) == (1, 2, 2)
    assert slope.closure_rate == pytest.approx(1 / 3)
    assert (river.dismissed, river.overdue, river.closure_rate) == (1, 1, 0.5)
    assert (places["slope"].calls.rounds, places["river"].calls.rounds) == (8, 2)


def test_call_and_acknowledge_times(month: tuple[Month, Monthly]) -> None:
    m, r = month
    rounds = sql(
        m,
        "SELECT ticket_id, round, MIN(called_at) FROM calls GROUP BY ticket_id, round HAVING MIN(called_at) >= ? AND MIN(called_at) < ?",
        *JULY,
    )
    assert r.calls.rounds == len(rounds) == 10
    by_level: dict[int, list[int]] = defaultdict(list)
    for _point, when, _who in m.script.acks:
        if not JULY[0] <= when < JULY[1]:
            continue
        [(tid,)] = sql(
            m, "SELECT ticket_id FROM ticket_events WHERE kind = 'acknowledged' AND at = ?", when
        )
        start = max(s for t, _, s in rounds if t == tid and s <= when)
        [(lv,)] = sql(
            m,
            "SELECT level FROM ticket_events WHERE ticket_id = ? AND at = ? AND kind IN ('warning_issued', 'warning_raised')",
            tid,
            start,
        )
        by_level[int(lv)].append(when - start)
    assert r.calls.acknowledged == sum(len(v) for v in by_level.values()) == 4
    for lv in Level:
        got = r.calls.by_level[lv]
        values = by_level.get(int(lv), [])
        assert got.n == len(values)
        if values:
            assert got.median_s == pytest.approx(statistics.median(values) / 1000, abs=0.05)
            assert got.p90_s == pytest.approx(nearest_rank(values, 0.9) / 1000, abs=0.05)
    # by grid level: a person's own call to their own acknowledgement
    rows = sql(
        m,
        "SELECT grid, acked_at - called_at FROM calls WHERE outcome = 'acknowledged' AND called_at >= ? AND called_at < ?",
        *JULY,
    )
    grids: dict[str, list[int]] = defaultdict(list)
    for grid, took in rows:
        grids[str(grid).split(":")[0]].append(int(took))  # type: ignore[call-overload]
    assert set(r.calls.by_grid) == set(grids) == {"point", "group"}
    for g, values in grids.items():
        assert r.calls.by_grid[g].median_s == pytest.approx(
            statistics.median(values) / 1000, abs=0.05
        )
    # one escalation (the 5th's orange round); 李明 and the duty officer were passed
    assert r.calls.escalations == 1
    assert dict(r.calls.escalated_past) == {"李明": 1, "赵敏": 1}


def test_patrol_completion_by_grid_member(month: tuple[Month, Monthly]) -> None:
    m, r = month
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    sizes = {"slope-daily": 3, "river-daily": 2}
    for rec in m.script.patrols:
        name = {"li": "李明"}.get(rec.by, rec.by)
        e = expected[name]
        e[0] += 1
        e[1] += sizes[rec.checklist or ""]
        e[2] += len(rec.items)
        e[3] += sum(1 for i in rec.items if i.result == "abnormal")
    got = {p.inspector: [p.records, p.items_expected, p.items_done, p.abnormal] for p in r.patrols}
    assert got == dict(expected) == {"李明": [10, 30, 29, 2], "刘芳": [4, 8, 8, 0]}
    assert {p.inspector: p.hazards for p in r.patrols} == {"李明": 1, "刘芳": 0}


def test_comparison_with_june_and_the_summary(month: tuple[Month, Monthly]) -> None:
    _, r = month
    b = r.previous
    assert b is not None
    assert (b.warnings, b.hazards_opened, b.hazards_closed, b.storm_days) == (1, 1, 0, 0)
    assert b.closure_rate == 1.0  # June's one hazard was dismissed
    rows = {c.label: c for c in r.changes}
    assert (
        rows["发布预警（次）"].now,
        rows["发布预警（次）"].before,
        rows["发布预警（次）"].delta,
    ) == ("4", "1", "+3")
    assert rows["暴雨日（天）"].delta == "+2"
    text = "".join(r.summary)
    assert "本月共发布预警4次（橙色2次、黄色2次），较上月增加3次" in text
    assert "暴雨日2天（5日、22日）" in text
    assert "上坪河水位计在线率最低" in text


def test_a_month_with_no_data_reports_zeros(month: tuple[Month, Monthly]) -> None:
    m, _ = month
    conn = sqlite3.connect(f"file:{m.cfg.database.path}?mode=ro", uri=True)
    try:
        r = monthly(conn, m.cfg, month_period("2026-03"), at(8, 2), m.ruleset)
    finally:
        conn.close()
    assert (r.warnings.total, r.hazards.opened, r.calls.rounds) == (0, 0, 0)
    assert r.hazards.closure_rate is None and r.calls.all_rounds.median_s is None
    assert all(g.total_mm == 0 for g in r.rain) and r.storm_days == ()
    assert {a.device: a.uptime for a in r.devices if a.uptime is not None} == dict.fromkeys(
        ("rg-01", "rg-02", "wl-01", "cm-01"), 0.0
    )
    assert r.summary[0].startswith("本月共发布预警0次")
    assert TZ.key == "Asia/Shanghai"
