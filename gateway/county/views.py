"""What the county page shows: plain functions over one psycopg connection.

Names come from each station's own state message (`stations.state`): its villages,
points, devices and people, so the page says 李网格 and 后山滑坡点, never `li` or `p1`.
Times go out as UTC milliseconds; the page shows them in the county's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.county.config import CountyConfig
from gateway.county.escalation import LEVELS, TownshipWarning, due, load_warnings

METRIC_ZH = {
    "rain_mm": "雨量",
    "rain_now_mm": "当前雨量",
    "rain_total_mm": "累计雨量",
    "level_m": "水位",
    "river_level_m": "河道水位",
    "water_level_m": "水位",
    "crack_mm": "裂缝位移",
    "geo_crack_mm": "裂缝宽度",
    "displacement_mm": "位移",
    "tilt_deg": "倾角",
    "battery_v": "电池电压",
    "supply_v": "电源电压",
    "co_mg": "一氧化碳",
}
UNITS = (("_mm", "mm"), ("_m", "m"), ("_v", "V"), ("_deg", "°"))
ONLINE_S = 180  # a station heard from within this is online (state every 60 s by default)
FINAL = ("closed", "dismissed", "lifted")


def ms(at: datetime | None) -> int | None:
    return int(at.timestamp() * 1000) if at is not None else None


def dt(v: int) -> datetime:
    return datetime.fromtimestamp(v / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Names:
    """A station's words for its own things, from its state message."""

    station: str
    villages: Mapping[str, str]
    points: Mapping[str, dict[str, Any]]
    devices: Mapping[str, dict[str, Any]]
    people: Mapping[str, str]

    def point(self, pid: str | None) -> str | None:
        p = self.points.get(pid or "")
        return str(p["name"]) if p and p.get("name") else None

    def village_of(self, pid: str | None) -> str | None:
        p = self.points.get(pid or "")
        return self.villages.get(str(p.get("village"))) if p else None

    def device(self, did: str | None) -> str | None:
        d = self.devices.get(did or "")
        return str(d["name"]) if d and d.get("name") else None

    def metric(self, did: str | None, metric: str | None) -> str | None:
        """A metric's name: the station's own (its state message's device metrics), else
        the usual names of the common metrics, else None (the page says 数据)."""
        if not metric:
            return None
        d = self.devices.get(did or "") or {}
        spec = (d.get("metrics") or {}).get(metric)
        if isinstance(spec, dict) and spec.get("name"):
            return str(spec["name"])
        return METRIC_ZH.get(metric)

    def unit(self, did: str | None, metric: str | None) -> str | None:
        d = self.devices.get(did or "") or {}
        spec = (d.get("metrics") or {}).get(metric or "")
        unit = spec.get("unit") if isinstance(spec, dict) else None
        if unit is None and metric:
            unit = next((u for suffix, u in UNITS if metric.endswith(suffix)), None)
        return str(unit) if unit and unit != "1" else None

    def person(self, who: str | None) -> str | None:
        if not who:
            return None
        return self.people.get(who, who)


def names_of(cfg: CountyConfig, station: str, name: str | None, state: Any) -> Names:
    st = state if isinstance(state, dict) else {}
    known = {s.id: s.name for s in cfg.stations}
    return Names(
        station=known.get(station) or name or st.get("name") or station,
        villages={str(v.get("id")): str(v.get("name")) for v in st.get("villages", [])},
        points={str(p.get("id")): p for p in st.get("points", [])},
        devices={str(d.get("id")): d for d in st.get("devices", [])},
        people={str(p.get("id")): str(p.get("name")) for p in st.get("people", [])},
    )


def all_names(conn: Any, cfg: CountyConfig) -> dict[str, Names]:
    rows = conn.execute("SELECT id, name, state FROM stations").fetchall()
    out = {str(i): names_of(cfg, str(i), n, s) for i, n, s in rows}
    for s in cfg.stations:
        out.setdefault(s.id, names_of(cfg, s.id, s.name, None))
    return out


# --- fleet health ------------------------------------------------------------------


def fleet(conn: Any, cfg: CountyConfig, now: int) -> list[dict[str, Any]]:
    """Every station the county knows or heard from: online, last seen, backlog, disk,
    gateway version, clock offset, the rules plan it runs, its warnings in force."""
    rows = conn.execute(
        "SELECT id, name, grp, tz, version, state, last_seen, clock_offset_ms, backlog, "
        "disk_free_mb, plan_version, plan_hash, plan_errors, plan_at FROM stations"
    ).fetchall()
    warn = {
        (str(s), str(lv)): int(n)
        for s, lv, n in conn.execute(
            "SELECT station, level, count(*) FROM tickets WHERE kind = 'warning' "
            "AND state = 'issued' GROUP BY station, level"
        ).fetchall()
    }
    devs = {
        str(s): (int(on or 0), int(n))
        for s, on, n in conn.execute(
            "SELECT station, count(*) FILTER (WHERE online), count(*) FROM device_health "
            "GROUP BY station"
        ).fetchall()
    }
    known = {s.id: s for s in cfg.stations}
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for sid, name, grp, tz, version, state, last, offset, backlog, disk, pv, ph, pe, pat in rows:
        sid = str(sid)
        seen.add(sid)
        k = known.get(sid)
        st = state if isinstance(state, dict) else {}
        last_ms = ms(last)
        on, total = devs.get(sid, (0, len(st.get("devices", []))))
        out.append(
            {
                "id": sid,
                "name": (k.name if k else None) or name or st.get("name") or sid,
                "known": k is not None,
                "group": (k.group if k else None) or grp,
                "tz": tz,
                "online": last_ms is not None and now - last_ms <= ONLINE_S * 1000,
                "last_seen": last_ms,
                "backlog": backlog,
                "disk_free_mb": disk,
                "version": version,
                "clock_offset_ms": offset,
                "clock_sane": (st.get("clock") or {}).get("sane", True),
                "plan": {
                    "version": pv,
                    "hash": ph,
                    "errors": list(pe or []),
                    "at": ms(pat),
                },
                "warnings": {lv: warn.get((sid, lv), 0) for lv in LEVELS},
                "devices": {"online": on, "total": total},
            }
        )
    for sid, k in known.items():  # known, never heard from
        if sid not in seen:
            out.append(
                {
                    "id": sid,
                    "name": k.name,
                    "known": True,
                    "group": k.group,
                    "tz": None,
                    "online": False,
                    "last_seen": None,
                    "backlog": None,
                    "disk_free_mb": None,
                    "version": None,
                    "clock_offset_ms": None,
                    "clock_sane": True,
                    "plan": {"version": None, "hash": None, "errors": [], "at": None},
                    "warnings": dict.fromkeys(LEVELS, 0),
                    "devices": {"online": 0, "total": 0},
                }
            )
    out.sort(key=lambda s: (s["online"], s["name"]))  # the offline first
    return out


# --- warnings and their 叫应 state ----------------------------------------------------

CALLED = re.compile(r"^(?P<grid>\S+) (?P<name>.+?) \((?P<why>[^)]*)\)$")


def callee(note: str | None, n: Names) -> dict[str, Any]:
    """A `called` event's note (`point:p1 李网格 (issued)`) as the page shows it."""
    m = CALLED.match(note or "")
    if m is None:
        return {"name": note or "", "grid": None, "grid_name": None, "why": None}
    grid = m["grid"]
    level, _, gid = grid.partition(":")
    gname = {
        "point": n.point(gid),
        "village": n.villages.get(gid),
    }.get(level)
    why = m["why"].split(",")[0].strip()
    return {"name": m["name"], "grid": level, "grid_name": gname, "why": why}


def warnings(conn: Any, cfg: CountyConfig, now: int) -> list[dict[str, Any]]:
    """Every warning in force at every station, most urgent first, with who was called,
    whether and when someone answered, and the county's own deadline and ticket."""
    names = all_names(conn, cfg)
    tickets = {
        (str(s), int(i)): (device, metric, point, value, ms(opened), ms(updated))
        for s, i, device, metric, point, value, opened, updated in conn.execute(
            # a warning names its point; the reading behind it is the newest hazard's
            # there (the station's desk issues the point's warning from it)
            "SELECT t.station, t.id, COALESCE(t.device, h.device), COALESCE(t.metric, "
            "h.metric), t.point, t.value, t.opened_at, t.updated_at FROM tickets t "
            "LEFT JOIN LATERAL (SELECT device, metric FROM tickets h WHERE h.station = "
            "t.station AND h.point = t.point AND h.kind = 'hazard' AND h.device IS NOT NULL "
            "ORDER BY h.updated_at DESC LIMIT 1) h ON true "
            "WHERE t.kind = 'warning' AND t.state = 'issued'"
        ).fetchall()
    }
    events: dict[tuple[str, int], list[tuple[int, str, str | None, str | None, str | None]]] = {}
    for s, tid, at, kind, actor, note, channel in conn.execute(
        "SELECT e.station, e.ticket_id, e.at, e.kind, e.actor, e.note, e.channel "
        "FROM ticket_events e JOIN tickets t ON t.station = e.station AND t.id = e.ticket_id "
        "WHERE t.kind = 'warning' AND t.state = 'issued' ORDER BY e.at, e.id"
    ).fetchall():
        events.setdefault((str(s), int(tid)), []).append(
            (ms(at) or 0, str(kind), actor, note, channel)
        )
    people = {p.id: p.name for p in cfg.people}
    county = {
        (str(s), int(t)): {
            "id": int(i),
            "state": st,
            "acked_by": people.get(by, by) if by else None,
            "acked_at": ms(aa),
        }
        for i, s, t, st, by, aa in conn.execute(
            "SELECT id, station, station_ticket, state, acked_by, acked_at FROM county_tickets "
            "WHERE state <> 'closed'"
        ).fetchall()
    }
    out: list[dict[str, Any]] = []
    for w in load_warnings(conn):
        out.append(_warning(w, names, tickets, events, county, cfg, now))
    out.sort(key=lambda x: (-LEVELS.index(x["level"]), x["answered"] is not None, x["since"]))
    return out


def _warning(
    w: TownshipWarning,
    names: Mapping[str, Names],
    tickets: Mapping[tuple[str, int], tuple[Any, ...]],
    events: Mapping[tuple[str, int], list[tuple[int, str, str | None, str | None, str | None]]],
    county: Mapping[tuple[str, int], dict[str, Any]],
    cfg: CountyConfig,
    now: int,
) -> dict[str, Any]:
    key = (w.station, w.ticket)
    n = names.get(w.station) or names_of(cfg, w.station, None, None)
    device, metric, point, value, opened, _updated = tickets.get(
        key, (None, None, None, None, w.opened_at, None)
    )
    called: list[dict[str, Any]] = []
    answered: dict[str, Any] | None = None
    not_reached: str | None = None
    since = opened or w.opened_at
    for at, kind, actor, note, channel in events.get(key, []):
        if kind in ("warning_issued", "warning_raised", "warning_lowered"):
            since, answered, not_reached, called = at, None, None, []
        elif kind in ("called", "escalated"):
            c = callee(note, n)
            c.update({"at": at, "escalated": kind == "escalated"})
            called.append(c)
        elif kind == "acknowledged":
            answered = {"by": n.person(actor), "at": at, "channel": channel}
        elif kind == "not_reached":
            not_reached = note
    d = due(w, cfg.escalation)
    state = (
        "answered"
        if answered
        else "not_reached"
        if not_reached is not None
        else "calling"
        if called
        else "waiting"
    )
    return {
        "station": w.station,
        "station_name": n.station,
        "ticket": w.ticket,
        "level": w.level,
        "point": n.point(point),
        "village": n.village_of(point),
        "device": n.device(device),
        "metric_name": n.metric(device, metric),
        "unit": n.unit(device, metric),
        "value": value,
        "opened_at": opened,
        "since": since,
        "state": state,
        "called": called,
        "answered": answered,
        "county_due_at": d[0] if d and not answered else None,
        "county": county.get(key),
    }


# --- the map -----------------------------------------------------------------------


def county_map(conn: Any, cfg: CountyConfig, now: int) -> dict[str, Any]:
    """Stations and their points with coordinates, each in the colour of its highest
    warning in force (points) or of the station's (stations)."""
    level_at: dict[tuple[str, str], str] = {}
    station_level: dict[str, str] = {}
    unanswered: set[str] = set()
    for s, point, level, acked in conn.execute(
        "SELECT t.station, t.point, t.level, EXISTS (SELECT 1 FROM ticket_events e "
        "WHERE e.station = t.station AND e.ticket_id = t.id AND e.kind = 'acknowledged') "
        "FROM tickets t WHERE t.kind = 'warning' AND t.state = 'issued'"
    ).fetchall():
        if level not in LEVELS:
            continue
        k = (str(s), str(point))
        if LEVELS.index(level) > LEVELS.index(level_at.get(k, "blue")) or k not in level_at:
            level_at[k] = level
        if str(s) not in station_level or LEVELS.index(level) > LEVELS.index(station_level[str(s)]):
            station_level[str(s)] = level
        if not acked:
            unanswered.add(str(s))
    stations = []
    points = []
    health = {s["id"]: s for s in fleet(conn, cfg, now)}
    for sid, name, lon, lat, state in conn.execute(
        "SELECT id, name, lon, lat, state FROM stations"
    ).fetchall():
        sid = str(sid)
        n = names_of(cfg, sid, name, state)
        if lon is not None and lat is not None:
            stations.append(
                {
                    "id": sid,
                    "name": n.station,
                    "lon": lon,
                    "lat": lat,
                    "level": station_level.get(sid),
                    "unanswered": sid in unanswered,
                    "online": health.get(sid, {}).get("online", False),
                }
            )
        for pid, p in n.points.items():
            if p.get("lon") is None or p.get("lat") is None:
                continue
            points.append(
                {
                    "station": sid,
                    "id": pid,
                    "name": p.get("name") or "",
                    "village": n.villages.get(str(p.get("village"))),
                    "station_name": n.station,
                    "lon": p["lon"],
                    "lat": p["lat"],
                    "level": level_at.get((sid, pid)),
                }
            )
    return {"stations": stations, "points": points}


# --- county tickets ----------------------------------------------------------------


def county_tickets(conn: Any, cfg: CountyConfig, *, open_only: bool = True) -> list[dict[str, Any]]:
    names = all_names(conn, cfg)
    people = {p.id: p.name for p in cfg.people}
    rows = conn.execute(
        "SELECT c.id, c.station, c.station_ticket, c.level, c.state, c.opened_at, c.reason, "
        "c.acked_by, c.acked_at, c.closed_at, t.point FROM county_tickets c "
        "LEFT JOIN tickets t ON t.station = c.station AND t.id = c.station_ticket "
        + ("WHERE c.state <> 'closed' " if open_only else "")
        + "ORDER BY c.opened_at DESC LIMIT 500"
    ).fetchall()
    calls: dict[int, list[dict[str, Any]]] = {}
    ids = [int(r[0]) for r in rows]
    if ids:
        for tid, at, person, role, channel, outcome in conn.execute(
            "SELECT ticket_id, at, person, role, channel, outcome FROM county_calls "
            "WHERE ticket_id = ANY(%s) ORDER BY at, id",
            (ids,),
        ).fetchall():
            calls.setdefault(int(tid), []).append(
                {
                    "at": ms(at),
                    "name": people.get(person, person),
                    "role": role,
                    "channel": channel,
                    "outcome": outcome,
                }
            )
    out = []
    for i, st, stt, lv, state, opened, reason, by, aa, closed, point in rows:
        n = names.get(str(st)) or names_of(cfg, str(st), None, None)
        mins = None
        if str(reason).startswith("unanswered:"):
            mins = max(1, int(str(reason).split(":")[1]) // 60)
        out.append(
            {
                "id": int(i),
                "station": st,
                "station_name": n.station,
                "station_ticket": int(stt),
                "point": n.point(point),
                "village": n.village_of(point),
                "level": lv,
                "state": state,
                "opened_at": ms(opened),
                "unanswered_min": mins,
                "acked_by": people.get(by, by) if by else None,
                "acked_at": ms(aa),
                "closed_at": ms(closed),
                "calls": calls.get(int(i), []),
            }
        )
    return out


# --- one station -------------------------------------------------------------------


def station_detail(conn: Any, cfg: CountyConfig, station: str, now: int) -> dict[str, Any] | None:
    """One station: its health, its tickets (the ledger: every ticket and its events),
    its devices and the series the county keeps for them."""
    row = conn.execute("SELECT name, state FROM stations WHERE id = %s", (station,)).fetchone()
    if row is None and station not in {s.id for s in cfg.stations}:
        return None
    n = names_of(cfg, station, row[0] if row else None, row[1] if row else None)
    health = next((s for s in fleet(conn, cfg, now) if s["id"] == station), None)
    tickets = []
    for i, kind, level, state, device, metric, point, value, opened, updated in conn.execute(
        "SELECT id, kind, level, state, device, metric, point, value, opened_at, "
        "updated_at FROM tickets WHERE station = %s ORDER BY opened_at DESC LIMIT 300",
        (station,),
    ).fetchall():
        tickets.append(
            {
                "id": int(i),
                "kind": kind,
                "level": level,
                "state": state,
                "point": n.point(point),
                "village": n.village_of(point),
                "device": n.device(device),
                "metric_name": n.metric(device, metric),
                "unit": n.unit(device, metric),
                "value": value,
                "opened_at": ms(opened),
                "updated_at": ms(updated),
                "open": state not in FINAL,
            }
        )
    events: dict[int, list[dict[str, Any]]] = {}
    for tid, at, kind, actor, level, note, channel in conn.execute(
        "SELECT ticket_id, at, kind, actor, level, note, channel FROM ticket_events "
        "WHERE station = %s AND ticket_id = ANY(%s) ORDER BY at, id",
        (station, [t["id"] for t in tickets]),
    ).fetchall():
        e: dict[str, Any] = {"at": ms(at), "kind": kind, "level": level, "channel": channel}
        if kind in ("called", "escalated"):
            e["callee"] = callee(note, n)
        elif kind == "acknowledged":
            e["by"] = n.person(actor)
        events.setdefault(int(tid), []).append(e)
    for t in tickets:
        t["events"] = events.get(t["id"], [])
    series = [
        {
            "device": d,
            "metric": m,
            "device_name": n.device(d) or "",
            "metric_name": n.metric(d, m),
            "unit": n.unit(d, m),
        }
        for d, m in conn.execute(
            "SELECT DISTINCT device, metric FROM readings WHERE station = %s "
            "AND ts > now() - interval '35 days' ORDER BY device, metric",
            (station,),
        ).fetchall()
    ]
    return {
        "id": station,
        "name": n.station,
        "health": health,
        "tickets": tickets,
        "series": series,
        "points": [
            {"name": p.get("name"), "village": n.villages.get(str(p.get("village")))}
            for p in n.points.values()
        ],
    }


def readings(
    conn: Any, station: str, device: str, metric: str, start: int, end: int, max_points: int = 2000
) -> list[list[float | int | None]]:
    """A series' readings in [start, end) from the county's store, as [ts, value]; longer
    spans averaged into at most `max_points` buckets."""
    span = max(1, end - start)
    bucket_s = max(1, span // max_points // 1000)
    rows = conn.execute(
        "SELECT (extract(epoch FROM ts)::bigint / %s) * %s AS b, avg(value) FROM readings "
        "WHERE station = %s AND device = %s AND metric = %s AND ts >= %s AND ts < %s "
        "GROUP BY b ORDER BY b",
        (bucket_s, bucket_s, station, device, metric, dt(start), dt(end)),
    ).fetchall()
    return [[int(b) * 1000, float(v) if v is not None else None] for b, v in rows]


# --- the county monthly report -------------------------------------------------------


def monthly(
    conn: Any, cfg: CountyConfig, year: int, month: int, *, previous: bool = True
) -> dict[str, Any]:
    """Figures per township for one month (county time): warnings by level, how many
    were answered and how fast, how many went up to the county, hazards found and written
    off, device faults, readings received."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(cfg.county.timezone)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    names = all_names(conn, cfg)
    rows: dict[str, dict[str, Any]] = {}

    def row(st: str) -> dict[str, Any]:
        if st not in rows:
            n = names.get(st)
            rows[st] = {
                "station": st,
                "name": n.station if n else st,
                "warnings": dict.fromkeys(LEVELS, 0),
                "answered": 0,
                "answer_median_s": None,
                "escalated": 0,
                "hazards": 0,
                "hazards_closed": 0,
                "faults": 0,
                "readings": 0,
            }
        return rows[st]

    for s in cfg.stations:
        row(s.id)
    for st, kind, level, state, n in conn.execute(
        "SELECT station, kind, level, state, count(*) FROM tickets "
        "WHERE opened_at >= %s AND opened_at < %s GROUP BY station, kind, level, state",
        (start, end),
    ).fetchall():
        r = row(str(st))
        if kind == "warning" and level in LEVELS:
            r["warnings"][level] += int(n)
        elif kind == "hazard":
            r["hazards"] += int(n)
            if state == "closed":
                r["hazards_closed"] += int(n)
        elif kind == "device_fault":
            r["faults"] += int(n)
    for st, n, med in conn.execute(
        "SELECT t.station, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
        "extract(epoch FROM a.at - t.opened_at)) FROM tickets t JOIN LATERAL (SELECT min(at) "
        "AS at FROM ticket_events e WHERE e.station = t.station AND e.ticket_id = t.id AND "
        "e.kind = 'acknowledged') a ON a.at IS NOT NULL WHERE t.kind = 'warning' "
        "AND t.opened_at >= %s AND t.opened_at < %s GROUP BY t.station",
        (start, end),
    ).fetchall():
        r = row(str(st))
        r["answered"] = int(n)
        r["answer_median_s"] = round(float(med)) if med is not None else None
    for st, n in conn.execute(
        "SELECT station, count(*) FROM county_tickets WHERE opened_at >= %s AND opened_at < %s "
        "GROUP BY station",
        (start, end),
    ).fetchall():
        row(str(st))["escalated"] = int(n)
    for st, n in conn.execute(
        "SELECT station, count(*) FROM readings WHERE ts >= %s AND ts < %s GROUP BY station",
        (start, end),
    ).fetchall():
        row(str(st))["readings"] = int(n)
    townships = sorted(rows.values(), key=lambda r: r["name"])
    total = {
        "warnings": {lv: sum(r["warnings"][lv] for r in townships) for lv in LEVELS},
        "answered": sum(r["answered"] for r in townships),
        "escalated": sum(r["escalated"] for r in townships),
        "hazards": sum(r["hazards"] for r in townships),
        "hazards_closed": sum(r["hazards_closed"] for r in townships),
        "faults": sum(r["faults"] for r in townships),
        "readings": sum(r["readings"] for r in townships),
    }
    out: dict[str, Any] = {
        "county": cfg.county.name,
        "month": f"{year:04d}-{month:02d}",
        "townships": townships,
        "total": total,
    }
    if previous:
        py, pm = (year - 1, 12) if month == 1 else (year, month - 1)
        out["previous"] = monthly(conn, cfg, py, pm, previous=False)["total"]
    return out


def refused(conn: Any, cfg: CountyConfig, hours: int = 24) -> list[dict[str, Any]]:
    """What the consumer refused or dead-lettered lately, counted per station and
    reason (the reason is the consumer's own words: the page keeps it as a tooltip)."""
    names = {s.id: s.name for s in cfg.stations}
    rows = conn.execute(
        "SELECT station, reason, count(*), max(at) FROM quarantine "
        "WHERE at > now() - make_interval(hours => %s) GROUP BY station, reason "
        "ORDER BY max(at) DESC LIMIT 100",
        (hours,),
    ).fetchall()
    return [
        {
            "station": st,
            "name": names.get(st) if st else None,
            "reason": reason,
            "count": int(n),
            "last": ms(last),
        }
        for st, reason, n, last in rows
    ]
