"""A county in a storm, written straight into the county's tables as schema.py shapes
them (what 19a's consumer stores from the stations' messages): four township stations
and one never heard from, warnings red (unanswered), orange (answered), yellow (calling),
a hazard, a station offline with its clock off and a plan it rejected, rainfall."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from gateway.county.config import CountyConfig

MIN = 60_000

COUNTY = {
    "county": {"name": "青山县应急管理局", "timezone": "Asia/Shanghai"},
    "stations": [
        {"id": "xikou", "name": "溪口镇", "group": "south"},
        {"id": "shanwei", "name": "山尾乡", "group": "south"},
        {"id": "dongling", "name": "东岭镇", "group": "north"},
        {"id": "hekou", "name": "河口街道", "group": "north"},
        {"id": "beishan", "name": "北山乡", "group": "north"},
    ],
    "groups": [{"id": "south", "name": "南片区"}],  # north has no name: shown by its stations
    "nats": {"servers": ["nats://127.0.0.1:4222"]},
    "postgres": {"dsn": "postgresql:///county"},
    "escalation": {"red_s": 600, "orange_s": 1200, "yellow_s": 3600},
    "people": [
        {"id": "wang", "name": "王值班", "phone": "13900000001", "roles": ["duty_officer"]},
        {
            "id": "liu",
            "name": "刘局长",
            "phone": "13900000003",
            "roles": ["leader"],
            "grid": "county",
        },
    ],
    "duty": [
        {"officer": "wang", "start": "08:00", "end": "20:00"},
        {"officer": "wang", "start": "20:00", "end": "08:00"},
    ],
    "notify": {"sms": {"port": "/dev/null"}, "mqtt": {"enabled": False}},
}


def config() -> CountyConfig:
    return CountyConfig.model_validate(COUNTY)


def _state(
    name: str,
    lon: float,
    lat: float,
    villages: list[Any],
    points: list[Any],
    devices: list[Any],
    people: list[Any],
    at: int,
    plan: dict[str, Any],
) -> dict[str, Any]:
    return {
        "name": name,
        "tz": "Asia/Shanghai",
        "version": "0.9.3",
        "lon": lon,
        "lat": lat,
        "villages": villages,
        "points": points,
        "devices": devices,
        "people": people,
        "plan": plan,
        "at": at,
        "disk_free_mb": 5200.0,
        "backlog": 0,
        "clock": {"sane": True, "ms": at},
    }


def last_month(now: int) -> int:
    """10:00 on the 15th of the month before `now`'s, county time (UTC ms)."""
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(now / 1000, ZoneInfo("Asia/Shanghai"))
    y, m = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return int(datetime(y, m, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)


def dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def fill(conn: Any, now: int) -> None:
    """The county at `now` (UTC ms)."""
    rain = {"rain_mm": {"name": "雨量", "unit": "mm"}}
    level = {"level_m": {"name": "水位", "unit": "m"}}
    stations = {
        "xikou": _state(
            "溪口镇",
            118.10,
            26.05,
            [{"id": "xiaxi", "name": "下溪村"}, {"id": "shangxi", "name": "上溪村"}],
            [
                {
                    "id": "houshan",
                    "name": "后山滑坡点",
                    "village": "xiaxi",
                    "lon": 118.115,
                    "lat": 26.062,
                    "kind": "landslide",
                },
                {
                    "id": "bridge",
                    "name": "溪口大桥",
                    "village": "shangxi",
                    "lon": 118.09,
                    "lat": 26.04,
                    "kind": "river",
                },
            ],
            [
                {
                    "id": "rg-01",
                    "name": "后山雨量计",
                    "point": "houshan",
                    "protocol": "sl651",
                    "metrics": rain,
                },
                {
                    "id": "wl-01",
                    "name": "大桥水位计",
                    "point": "bridge",
                    "protocol": "sl651",
                    "metrics": level,
                },
            ],
            [
                {"id": "li", "name": "李网格", "role": "grid_member"},
                {"id": "zhang", "name": "张村长", "role": "leader"},
            ],
            now - 20_000,
            {"version": "2026.12-1", "hash": "9f2c…", "errors": []},
        ),
        "shanwei": _state(
            "山尾乡",
            118.25,
            26.12,
            [{"id": "tanxia", "name": "潭下村"}],
            [
                {
                    "id": "tan",
                    "name": "潭下河段",
                    "village": "tanxia",
                    "lon": 118.26,
                    "lat": 26.13,
                    "kind": "river",
                }
            ],
            [
                {
                    "id": "wl-07",
                    "name": "潭下水位计",
                    "point": "tan",
                    "protocol": "hj212",
                    "metrics": level,
                }
            ],
            [{"id": "wangwg", "name": "王网格", "role": "grid_member"}],
            now - 35_000,
            {"version": "2026.12-1", "hash": "9f2c…", "errors": []},
        ),
        "dongling": _state(
            "东岭镇",
            118.02,
            26.20,
            [{"id": "ling", "name": "岭头村"}],
            [
                {
                    "id": "lingtou",
                    "name": "岭头沟",
                    "village": "ling",
                    "lon": 118.03,
                    "lat": 26.21,
                    "kind": "gully",
                }
            ],
            [
                {
                    "id": "rg-21",
                    "name": "岭头雨量计",
                    "point": "lingtou",
                    "protocol": "mqtt_json",
                    "metrics": rain,
                }
            ],
            [{"id": "chen", "name": "陈网格", "role": "grid_member"}],
            now - 50_000,
            {"version": "2026.11-3", "hash": "41aa…", "errors": []},
        ),
        "hekou": _state(
            "河口街道",
            118.18,
            25.96,
            [{"id": "he", "name": "河湾社区"}],
            [
                {
                    "id": "wan",
                    "name": "河湾泵站",
                    "village": "he",
                    "lon": 118.19,
                    "lat": 25.97,
                    "kind": "pump",
                }
            ],
            [
                {
                    "id": "wl-31",
                    "name": "泵站水位计",
                    "point": "wan",
                    "protocol": "modbus",
                    "metrics": level,
                }
            ],
            [{"id": "zhou", "name": "周网格", "role": "grid_member"}],
            now - 47 * MIN,
            {"version": "2026.11-3", "hash": "41aa…", "errors": []},
        ),
    }
    offsets = {"xikou": 120, "shanwei": -340, "dongling": 800, "hekou": 312_000}
    seen = {
        "xikou": now - 20_000,
        "shanwei": now - 35_000,
        "dongling": now - 50_000,
        "hekou": now - 47 * MIN,
    }
    plans = {
        "xikou": ("2026.12-1", "9f2c", None),
        "shanwei": ("2026.12-1", "9f2c", None),
        "dongling": ("2026.11-3", "41aa", None),
        "hekou": ("2026.11-3", "41aa", ["rules.toml: thresholds.levels: red must be above orange"]),
    }
    for sid, st in stations.items():
        pv, ph, pe = plans[sid]
        conn.execute(
            "INSERT INTO stations (id, name, grp, tz, lon, lat, version, state, state_at, "
            "last_seen, clock_offset_ms, backlog, disk_free_mb, plan_version, plan_hash, "
            "plan_errors, plan_at) VALUES (%s, %s, NULL, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s)",
            (
                sid,
                st["name"],
                st["tz"],
                st["lon"],
                st["lat"],
                st["version"],
                Jsonb(st),
                dt(st["at"]),
                dt(seen[sid]),
                offsets[sid],
                18_400 if sid == "hekou" else 0,
                812.0 if sid == "dongling" else 5200.0,
                pv,
                ph,
                Jsonb(pe) if pe else None,
                dt(now - 3 * 3600_000),
            ),
        )
        for d in st["devices"]:
            online = sid != "hekou"
            conn.execute(
                "INSERT INTO device_health (station, device, online, at, body, seq) "
                "VALUES (%s, %s, %s, %s, %s, 1)",
                (sid, d["id"], online, dt(now - 5 * MIN), Jsonb({"online": online})),
            )
    for version, target, digest, age_h in (
        ("2026.11-3", "group.north", "41aa", 30 * 24),
        ("2026.12-1", "all", "9f2c", 5),
    ):
        conn.execute(
            "INSERT INTO plans (version, target, hash, body, created_by, created_at) "
            "VALUES (%s, %s, %s, %s, 'tech', %s)",
            (version, target, digest, Jsonb({"rules": "..."}), dt(now - age_h * 3600_000)),
        )
    for station, reason, n in (
        ("hekou", "readings[3]: not a number", 3),
        (None, "unknown station 'x9'", 1),
    ):
        for i in range(n):
            conn.execute(
                "INSERT INTO quarantine (at, subject, station, reason, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    dt(now - (i + 1) * 7 * MIN),
                    f"county.{station or 'x9'}.readings",
                    station,
                    reason,
                    b"{}",
                ),
            )
    seq = [100]

    def ticket(
        st: str,
        tid: int,
        kind: str,
        lv: str | None,
        state: str,
        device: str,
        metric: str,
        point: str,
        value: float,
        opened: int,
    ) -> None:
        seq[0] += 1
        conn.execute(
            "INSERT INTO tickets (station, id, kind, level, state, title, device, metric, "
            "point, rule, value, opened_at, updated_at, seq) VALUES (%s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                st,
                tid,
                kind,
                lv,
                state,
                f"{metric} {lv}",
                device,
                metric,
                point,
                f"{metric}-{lv}",
                value,
                dt(opened),
                dt(opened),
                seq[0],
            ),
        )

    eid = [1000]

    def event(
        st: str,
        tid: int,
        at: int,
        kind: str,
        actor: str,
        *,
        level: str | None = None,
        note: str | None = None,
        channel: str | None = None,
    ) -> None:
        eid[0] += 1
        seq[0] += 1
        body = {
            "id": eid[0],
            "at": at,
            "kind": kind,
            "actor": actor,
            "level": level,
            "note": note,
            "channel": channel,
        }
        conn.execute(
            "INSERT INTO ticket_events (station, id, ticket_id, seq, at, kind, actor, level, "
            "note, channel, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (st, eid[0], tid, seq[0], dt(at), kind, actor, level, note, channel, Jsonb(body)),
        )

    # 溪口镇: red at 后山滑坡点, 14 minutes, nobody answered (the county's 10 are over)
    t0 = now - 14 * MIN
    ticket("xikou", 12, "warning", "red", "issued", "rg-01", "rain_mm", "houshan", 38.5, t0)
    event("xikou", 12, t0, "warning_issued", "rules", level="red")
    event("xikou", 12, t0, "called", "desk", level="red", note="point:houshan 李网格 (issued)")
    event(
        "xikou",
        12,
        t0 + 5 * MIN,
        "escalated",
        "desk",
        level="red",
        note="village:xiaxi 张村长 (escalated)",
    )
    ticket(
        "xikou",
        13,
        "hazard",
        None,
        "discovered",
        "rg-01",
        "rain_mm",
        "houshan",
        0.0,
        now - 3 * 3600_000,
    )
    event("xikou", 13, now - 3 * 3600_000, "reported", "li")
    # 山尾乡: orange, answered by 王网格 by SMS after 5 minutes
    t1 = now - 25 * MIN
    ticket("shanwei", 3, "warning", "orange", "issued", "wl-07", "level_m", "tan", 4.12, t1)
    event("shanwei", 3, t1, "warning_issued", "rules", level="orange")
    event("shanwei", 3, t1, "called", "desk", level="orange", note="point:tan 王网格 (issued)")
    event("shanwei", 3, t1 + 5 * MIN, "acknowledged", "王网格", channel="sms")
    # 东岭镇: yellow for 5 minutes, being called
    t2 = now - 5 * MIN
    ticket("dongling", 5, "warning", "yellow", "issued", "rg-21", "rain_mm", "lingtou", 21.0, t2)
    event("dongling", 5, t2, "warning_issued", "rules", level="yellow")
    event("dongling", 5, t2, "called", "desk", level="yellow", note="point:lingtou 陈网格 (issued)")
    # last month: two warnings at 溪口镇 (one answered), a hazard written off at 山尾乡
    lm = last_month(now)
    ticket("xikou", 2, "warning", "yellow", "lifted", "rg-01", "rain_mm", "houshan", 22.0, lm)
    event("xikou", 2, lm + 4 * MIN, "acknowledged", "李网格", channel="voice")
    ticket(
        "xikou",
        3,
        "warning",
        "orange",
        "lifted",
        "rg-01",
        "rain_mm",
        "houshan",
        31.0,
        lm + 3600_000,
    )
    ticket("shanwei", 1, "hazard", None, "closed", "wl-07", "level_m", "tan", 0.0, lm)
    ticket("hekou", 1, "device_fault", None, "closed", "wl-31", "level_m", "wan", 0.0, lm)
    # rainfall at 后山雨量计 over the last day (a storm building), one reading a 5 minutes
    rows = []
    for i in range(288):
        ts = now - (288 - i) * 5 * MIN
        v = round(max(0.0, 6 * math.sin(i / 30) + i / 24), 1)
        rows.append(("xikou", 10_000 + i, "rg-01", "rain_mm", dt(ts), v))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (station, seq, device, metric, ts, value) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )


FIRST = "清河石龙白桃青红金银松柏梅兰竹菊东西南北"
SECOND = "水山门泉沙源岩溪坪口"


def many(n: int) -> list[tuple[str, str]]:
    """`n` more townships (id, name): 清水镇, 清山乡, … — the names a county has."""
    out = []
    for i in range(n):
        name = FIRST[i % len(FIRST)] + SECOND[(i // len(FIRST)) % len(SECOND)]
        out.append((f"t{i:03d}", name + ("镇" if i % 3 else "乡")))
    return out


def fill_many(conn: Any, now: int, stations: list[tuple[str, str]]) -> int:
    """The generated townships: 2 villages, 4 points, 8 devices each, reporting now; every
    fifth has a warning in force (red, orange, yellow, blue in turn), half of them
    answered. How many warnings."""
    warnings = 0
    for i, (sid, name) in enumerate(stations):
        lon, lat = 117.7 + (i % 20) * 0.04, 25.8 + (i // 20) * 0.05
        villages = [{"id": f"v{j}", "name": f"{name[:2]}{'一二'[j]}村"} for j in range(2)]
        points = [
            {
                "id": f"p{j}",
                "name": f"{name[:2]}{j + 1}号监测点",
                "village": f"v{j % 2}",
                "lon": lon + 0.01 * j,
                "lat": lat + 0.008 * (j % 2),
                "kind": "landslide",
            }
            for j in range(4)
        ]
        devices = [
            {
                "id": f"rg-{j:02d}",
                "name": f"{name[:2]}{j + 1}号雨量计",
                "point": f"p{j % 4}",
                "protocol": "sl651",
                "metrics": {"rain_mm": {"name": "雨量", "unit": "mm"}},
            }
            for j in range(8)
        ]
        st = _state(
            name,
            lon,
            lat,
            villages,
            points,
            devices,
            [{"id": "gm", "name": f"{name[:2]}网格员", "role": "grid_member"}],
            now - 30_000,
            {"version": "2026.12-1", "hash": "9f2c…", "errors": []},
        )
        conn.execute(
            "INSERT INTO stations (id, name, grp, tz, lon, lat, version, state, state_at, "
            "last_seen, clock_offset_ms, backlog, disk_free_mb, plan_version, plan_hash, "
            "plan_at) VALUES (%s, %s, NULL, 'Asia/Shanghai', %s, %s, '0.9.3', %s, %s, %s, "
            "0, 0, 5200.0, '2026.12-1', '9f2c', %s)",
            (sid, name, lon, lat, Jsonb(st), dt(now - 30_000), dt(now - 30_000), dt(now)),
        )
        if i % 5:
            continue
        warnings += 1
        lv = ("red", "orange", "yellow", "blue")[(i // 5) % 4]
        opened = now - (i % 50 + 1) * MIN
        conn.execute(
            "INSERT INTO tickets (station, id, kind, level, state, title, device, metric, "
            "point, rule, value, opened_at, updated_at, seq) VALUES (%s, 1, 'warning', %s, "
            "'issued', 'rain', 'rg-00', 'rain_mm', 'p0', 'rain', 21.5, %s, %s, %s)",
            (sid, lv, dt(opened), dt(opened), 50_000 + i),
        )
        events = [(opened, "warning_issued", "rules", lv, None)]
        events.append((opened, "called", "desk", lv, f"point:p0 {name[:2]}网格员 (issued)"))
        if i % 10 == 0:
            events.append((opened + MIN, "acknowledged", f"{name[:2]}网格员", None, None))
        for k, (at, kind, actor, level, note) in enumerate(events):
            body = {"id": k + 1, "at": at, "kind": kind, "actor": actor, "level": level}
            conn.execute(
                "INSERT INTO ticket_events (station, id, ticket_id, seq, at, kind, actor, "
                "level, note, body) VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, %s)",
                (sid, k + 1, 60_000 + i * 10 + k, dt(at), kind, actor, level, note, Jsonb(body)),
            )
    return warnings
