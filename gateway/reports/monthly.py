"""The monthly safety situation report (月度安全形势分析报告) as plain data.

`monthly(conn, cfg, month, now, ruleset)` reads a station database through a read-only
connection and returns a `Monthly`: the station's figures, each village's and monitoring
point's, the sensors', the devices', the patrols', the previous month's headline and a
short Chinese summary of what changed. No IO besides the SELECTs; time is passed in.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from datetime import date

from gateway.config.reports import ReportsSection
from gateway.config.station import Config
from gateway.core.model import Level
from gateway.reports import loop, sensors
from gateway.reports.loop import LEVELS, Calls, Hazards, Patrol, Warnings
from gateway.reports.narrative import Change, Headline, changes, summary
from gateway.reports.period import Period, previous
from gateway.reports.sensors import Availability, CrackMeter, RainGauge, WaterGauge
from gateway.tickets.desk import policy_of
from rules.evaluator import RuleSet
from rules.model import NoDataRule


@dataclass(frozen=True, slots=True)
class Place:
    """A village or a monitoring point."""

    id: str
    name: str
    village: str | None  # a point's village; None for a village
    warnings: Warnings
    hazards: Hazards
    calls: Calls
    max_day_mm: float | None
    storm_days: int
    water_reached: Level | None
    uptime: float | None  # mean over its devices with an interval


@dataclass(frozen=True, slots=True)
class Monthly:
    station: str
    station_id: str
    period: Period
    generated_at: int
    warnings: Warnings
    hazards: Hazards
    calls: Calls
    villages: list[Place]
    points: list[Place]
    rain: list[RainGauge]
    storm_days: tuple[date, ...]
    storm_day_mm: float
    water: list[WaterGauge]
    crack: list[CrackMeter]
    devices: list[Availability]
    patrols: list[Patrol]
    headline: Headline
    previous: Headline | None
    changes: list[Change] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def monthly(
    conn: sqlite3.Connection,
    cfg: Config,
    period: Period,
    now: int,
    ruleset: RuleSet | None = None,
    reports: ReportsSection | None = None,
    *,
    compare: bool = True,
) -> Monthly:
    rs = reports or ReportsSection()
    rule_names = {r.id: r.name for r in ruleset.rules} if ruleset else {}
    no_data = {r.id for r in ruleset.rules if isinstance(r, NoDataRule)} if ruleset else set()
    handhelds = {d.id for d in cfg.devices if d.transport.kind == "handheld"}
    device_point = {d.id: d.point for d in cfg.devices}
    policy = policy_of(cfg)

    tickets = loop.read_tickets(conn, period.end)
    events = loop.read_events(conn, [t.id for t in tickets])
    warnings = loop.warnings_of(tickets, events, period)
    hazards = loop.hazards_of(tickets, events, period, policy, rule_names, handhelds)
    calls = loop.calls_of(conn, period, events)
    faults = loop.faults_of(tickets, period, no_data)

    rain = sensors.rain(conn, cfg, rs, period)
    water = sensors.water(conn, cfg, rs, period, ruleset)
    crack = sensors.crack(conn, cfg, rs, period)
    devices = sensors.availability(conn, cfg, period, now, faults)
    patrols = loop.patrols_of(conn, cfg, period)
    storm_days = tuple(sorted({d for g in rain for d in g.storm_days}))

    def place_of(t: loop.TicketRow) -> str | None:
        return t.point or (device_point.get(t.device) if t.device else None)

    def place(pid: str, name: str, village: str | None, point_ids: set[str]) -> Place:
        mine = [t for t in tickets if place_of(t) in point_ids]
        ids = {t.id for t in mine}
        gauges = [g for g in rain if g.point in point_ids]
        levels = [w.reached for w in water if w.point in point_ids and w.reached]
        ups = [a.uptime for a in devices if a.point in point_ids and a.uptime is not None]
        return Place(
            id=pid,
            name=name,
            village=village,
            warnings=loop.warnings_of(mine, events, period),
            hazards=loop.hazards_of(mine, events, period, policy, rule_names, handhelds),
            calls=loop.calls_of(conn, period, events, only=ids),
            max_day_mm=max((g.max_day_mm for g in gauges), default=None),
            storm_days=len({d for g in gauges for d in g.storm_days}),
            water_reached=max(levels, default=None),
            uptime=_mean(ups),
        )

    points = [place(p.id, p.name, p.village, {p.id}) for p in cfg.points]
    villages = [
        place(v.id, v.name, None, {p.id for p in cfg.points if p.village == v.id})
        for v in cfg.villages
    ]
    headline = Headline(
        warnings=warnings.total,
        warnings_high=warnings.by_level[Level.ORANGE] + warnings.by_level[Level.RED],
        hazards_opened=hazards.opened,
        hazards_closed=hazards.closed,
        closure_rate=hazards.closure_rate,
        overdue=hazards.overdue,
        median_ack_s=calls.all_rounds.median_s,
        escalations=calls.escalations,
        rain_max_total_mm=max((g.total_mm for g in rain), default=None),
        storm_days=len(storm_days),
        uptime=_mean([a.uptime for a in devices if a.uptime is not None]),
        completeness=_mean([a.completeness for a in devices if a.completeness is not None]),
        patrol_records=sum(p.records for p in patrols),
        patrol_completion=(
            sum(p.items_done for p in patrols) / sum(p.items_expected for p in patrols)
            if sum(p.items_expected for p in patrols)
            else None
        ),
    )
    before = None
    if compare:
        before = monthly(conn, cfg, previous(period), now, ruleset, rs, compare=False).headline
    out = Monthly(
        station=cfg.station.name,
        station_id=cfg.station.id,
        period=period,
        generated_at=now,
        warnings=warnings,
        hazards=hazards,
        calls=calls,
        villages=villages,
        points=points,
        rain=rain,
        storm_days=storm_days,
        storm_day_mm=rs.storm_day_mm,
        water=water,
        crack=crack,
        devices=devices,
        patrols=patrols,
        headline=headline,
        previous=before,
        changes=changes(headline, before),
    )
    return replace(out, summary=summary(out))


__all__ = ["LEVELS", "Change", "Headline", "Monthly", "Place", "monthly"]
