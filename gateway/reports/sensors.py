"""The monthly report's figures from readings: rainfall per gauge, water-level maxima
against their rules' lines, slope movement per crack meter, device availability and data
completeness. Pure over a read-only connection: the period and `now` are passed in."""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from gateway.config.reports import ReportsSection
from gateway.config.station import Config, Device
from gateway.core.model import Level
from gateway.ingest.health import interval_ms
from gateway.reports.period import Period
from rules.evaluator import RuleSet
from rules.model import ThresholdRule

HOUR = 3_600_000


@dataclass(frozen=True, slots=True)
class RainGauge:
    device: str
    name: str
    point: str
    metric: str
    total_mm: float
    max_hour_mm: float
    max_hour_at: int | None  # start of the wettest clock hour
    max_day_mm: float
    max_day: date | None
    storm_days: tuple[date, ...]
    daily: tuple[float, ...]  # per local day of the month


@dataclass(frozen=True, slots=True)
class WaterGauge:
    device: str
    name: str
    point: str
    metric: str
    max_m: float | None
    max_at: int | None
    lines: tuple[tuple[Level, float], ...]  # from the threshold rules judging the series
    reached: Level | None  # highest line the maximum reached
    daily_max: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class CrackMeter:
    device: str
    name: str
    point: str
    metric: str
    first_mm: float | None
    last_mm: float | None
    movement_mm: float | None  # last − first good reading of the month
    max_day_mm: float | None  # the largest movement in one local day
    max_day: date | None
    daily: tuple[float | None, ...]  # last reading of each day


@dataclass(frozen=True, slots=True)
class Outage:
    start: int
    end: int

    @property
    def ms(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Availability:
    device: str
    name: str
    point: str
    interval_ms: int | None  # None: no reporting interval configured, nothing expected
    expected: int  # readings expected over the month (all metrics)
    received: int
    completeness: float | None  # received / expected, at most 1
    uptime: float | None  # share of the period not inside an outage
    outages: tuple[Outage, ...]
    faults: dict[str, int] = field(default_factory=dict)  # device-fault tickets by type

    @property
    def longest(self) -> Outage | None:
        return max(self.outages, key=lambda o: o.ms) if self.outages else None


def series_rows(
    conn: sqlite3.Connection, device: str, metric: str, start: int, end: int
) -> list[tuple[int, float]]:
    """Good (unflagged) readings of a series in [start, end), oldest first."""
    rows = conn.execute(
        "SELECT r.ts, r.value FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.device = ? AND s.metric = ? AND r.ts >= ? AND r.ts < ? AND r.flags = 0 "
        "ORDER BY r.ts",
        (device, metric, start, end),
    ).fetchall()
    return [(int(t), float(v)) for t, v in rows]


def _increments(
    conn: sqlite3.Connection, d: Device, metric: str, source: str, p: Period
) -> list[tuple[int, float]]:
    rows = series_rows(conn, d.id, metric, p.start, p.end)
    if source == "increment":
        return rows
    before = conn.execute(  # the counter's value before the month: the first step's base
        "SELECT r.value FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device = ? "
        "AND s.metric = ? AND r.ts < ? AND r.flags = 0 ORDER BY r.ts DESC LIMIT 1",
        (d.id, metric, p.start),
    ).fetchone()
    previous = float(before[0]) if before else None
    out: list[tuple[int, float]] = []
    for ts, v in rows:
        if previous is not None:
            out.append((ts, v - previous if v >= previous else v))  # a reset counts from zero
        previous = v
    return out


def rain(conn: sqlite3.Connection, cfg: Config, rs: ReportsSection, p: Period) -> list[RainGauge]:
    days = p.days()
    starts = p.day_starts()
    out: list[RainGauge] = []
    for d in cfg.devices:
        for metric in d.metrics:
            source = rs.rain_metrics.get(metric)
            if source is None:
                continue
            steps = _increments(conn, d, metric, source, p)
            daily = [0.0] * len(days)
            hours: dict[int, float] = defaultdict(float)
            for ts, v in steps:
                daily[bisect_right(starts, ts) - 1] += v
                hours[ts - (ts - p.start) % HOUR] += v
            top_hour = max(hours.items(), key=lambda kv: kv[1], default=(None, 0.0))
            top_day = max(range(len(days)), key=lambda i: daily[i]) if steps else None
            out.append(
                RainGauge(
                    device=d.id,
                    name=d.name,
                    point=d.point,
                    metric=metric,
                    total_mm=round(sum(v for _, v in steps), 1),
                    max_hour_mm=round(top_hour[1], 1),
                    max_hour_at=top_hour[0],
                    max_day_mm=round(daily[top_day], 1) if top_day is not None else 0.0,
                    max_day=days[top_day] if top_day is not None else None,
                    storm_days=tuple(
                        day
                        for day, mm in zip(days, daily, strict=True)
                        if mm >= rs.storm_day_mm - 1e-9
                    ),
                    daily=tuple(round(x, 1) for x in daily),
                )
            )
    return out


def _lines(ruleset: RuleSet | None, device: str, metric: str) -> tuple[tuple[Level, float], ...]:
    """The warning lines of the first "above" threshold rule that judges the series."""
    if ruleset is None:
        return ()
    for r in sorted(ruleset.rules, key=lambda r: r.id):
        if (
            isinstance(r, ThresholdRule)
            and r.metric == metric
            and r.direction == "above"
            and (r.scope.devices is None or device in r.scope.devices)
        ):
            return tuple(r.limits)
    return ()


def water(
    conn: sqlite3.Connection,
    cfg: Config,
    rs: ReportsSection,
    p: Period,
    ruleset: RuleSet | None,
) -> list[WaterGauge]:
    days = p.days()
    starts = p.day_starts()
    out: list[WaterGauge] = []
    for d in cfg.devices:
        for metric in d.metrics:
            if metric not in rs.water_metrics:
                continue
            rows = series_rows(conn, d.id, metric, p.start, p.end)
            daily: list[float | None] = [None] * len(days)
            for ts, v in rows:
                i = bisect_right(starts, ts) - 1
                cur = daily[i]
                daily[i] = v if cur is None else max(cur, v)
            top = max(rows, key=lambda r: r[1]) if rows else None
            lines = _lines(ruleset, d.id, metric)
            reached = None
            if top is not None:
                for level, limit in lines:
                    if top[1] >= limit and (reached is None or level > reached):
                        reached = level
            out.append(
                WaterGauge(
                    device=d.id,
                    name=d.name,
                    point=d.point,
                    metric=metric,
                    max_m=top[1] if top else None,
                    max_at=top[0] if top else None,
                    lines=lines,
                    reached=reached,
                    daily_max=tuple(daily),
                )
            )
    return out


def crack(conn: sqlite3.Connection, cfg: Config, rs: ReportsSection, p: Period) -> list[CrackMeter]:
    days = p.days()
    starts = p.day_starts()
    out: list[CrackMeter] = []
    for d in cfg.devices:
        for metric in d.metrics:
            if metric not in rs.crack_metrics:
                continue
            rows = series_rows(conn, d.id, metric, p.start, p.end)
            last: list[float | None] = [None] * len(days)
            first: list[float | None] = [None] * len(days)
            for ts, v in rows:
                i = bisect_right(starts, ts) - 1
                if first[i] is None:
                    first[i] = v
                last[i] = v
            best: tuple[float, date] | None = None
            previous: float | None = None
            for i, day in enumerate(days):
                lo, hi = first[i], last[i]
                if hi is None or lo is None:
                    continue
                base = previous if previous is not None else lo
                moved = hi - base
                if best is None or moved > best[0]:
                    best = (moved, day)
                previous = hi
            out.append(
                CrackMeter(
                    device=d.id,
                    name=d.name,
                    point=d.point,
                    metric=metric,
                    first_mm=rows[0][1] if rows else None,
                    last_mm=rows[-1][1] if rows else None,
                    movement_mm=round(rows[-1][1] - rows[0][1], 2) if rows else None,
                    max_day_mm=round(best[0], 2) if best else None,
                    max_day=best[1] if best else None,
                    daily=tuple(last),
                )
            )
    return out


def outages(
    first: int | None,
    last: int | None,
    gaps: Iterable[tuple[int, int]],
    anchor: int | None,
    start: int,
    until: int,
    longer_than: float,
) -> list[Outage]:
    """Silences longer than `longer_than` ms within [start, until).

    `first`/`last` are the first and last report in the period (None: none came), `gaps`
    the (report, next report) pairs in it further apart than the limit, `anchor` the last
    report before the period (None: the period's start stands in); the period's end
    closes the last silence."""
    before = anchor if anchor is not None else start
    if first is None or last is None:
        return [Outage(start, until)] if until > start and until - before > longer_than else []
    out: list[Outage] = []
    if first - before > longer_than and first > start:
        out.append(Outage(max(before, start), first))
    out += [Outage(a, b) for a, b in gaps]
    if until - last > longer_than:
        out.append(Outage(last, until))
    return out


_GAPS = (
    "WITH t AS (SELECT DISTINCT r.ts FROM readings r JOIN series s ON s.id = r.series_id "
    "WHERE s.device = ? AND r.ts >= ? AND r.ts < ?) "
    "SELECT previous, ts FROM (SELECT ts, LAG(ts) OVER (ORDER BY ts) AS previous FROM t) "
    "WHERE ts - previous > ? ORDER BY ts"
)


def availability(
    conn: sqlite3.Connection, cfg: Config, p: Period, now: int, faults: dict[str, dict[str, int]]
) -> list[Availability]:
    """Per device with a reporting interval: readings received against those expected
    (one per interval and metric), and outages — silences longer than the health
    check's `stale_factor` × interval, the same rule that marks a device offline."""
    until = min(p.end, max(now, p.start))
    span = until - p.start
    out: list[Availability] = []
    for d in cfg.devices:
        ms = interval_ms(d)
        first, last, received = conn.execute(
            "SELECT MIN(r.ts), MAX(r.ts), COUNT(*) FROM readings r "
            "JOIN series s ON s.id = r.series_id WHERE s.device = ? AND r.ts >= ? AND r.ts < ?",
            (d.id, p.start, until),
        ).fetchone()
        if ms is None:
            out.append(
                Availability(
                    d.id, d.name, d.point, None, 0, received, None, None, (), faults.get(d.id, {})
                )
            )
            continue
        before = conn.execute(
            "SELECT MAX(r.ts) FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE s.device = ? AND r.ts < ?",
            (d.id, p.start),
        ).fetchone()[0]
        limit = cfg.health.stale_factor * ms
        pairs = conn.execute(_GAPS, (d.id, p.start, until, limit)).fetchall()
        gaps = outages(first, last, pairs, before, p.start, until, limit)
        expected = (span // ms) * len(d.metrics)
        down = sum(o.ms for o in gaps)
        out.append(
            Availability(
                device=d.id,
                name=d.name,
                point=d.point,
                interval_ms=ms,
                expected=expected,
                received=received,
                completeness=min(1.0, received / expected) if expected else None,
                uptime=1 - down / span if span > 0 else None,
                outages=tuple(gaps),
                faults=faults.get(d.id, {}),
            )
        )
    return out
