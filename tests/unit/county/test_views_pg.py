"""The county page's queries and the escalation pass against a real PostgreSQL 15
(throwaway, tests/county_pg.py) filled as the consumer fills it (tests/county_data.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gateway.county import escalation, users, views
from gateway.notify.base import Delivery, DeliveryError
from tests.county_data import MIN, config, fill, last_month
from tests.county_pg import migrate, postgres

NOW = int(time.time() * 1000) // 1000 * 1000


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with postgres() as conninfo:
        now = datetime.fromtimestamp(NOW / 1000, UTC)
        months = tuple(now - timedelta(days=d) for d in range(0, 70, 5))
        migrate(conninfo, months)
        with psycopg.connect(conninfo) as conn:
            fill(conn, NOW)
        yield conninfo


@pytest.fixture
def conn(dsn: str) -> Iterator[Any]:
    c = psycopg.connect(dsn, autocommit=True)
    yield c
    c.close()


def test_warnings_say_who_was_called_who_answered_and_the_county_deadline(conn: Any) -> None:
    ws = views.warnings(conn, config(), NOW)
    assert [(w["station_name"], w["level"], w["state"]) for w in ws] == [
        ("溪口镇", "red", "calling"),
        ("山尾乡", "orange", "answered"),
        ("东岭镇", "yellow", "calling"),
    ]
    red, orange, yellow = ws
    assert (red["point"], red["village"], red["device"], red["metric_name"]) == (
        "后山滑坡点",
        "下溪村",
        "后山雨量计",
        "雨量",
    )
    assert [(c["name"], c["grid"], c["grid_name"]) for c in red["called"]] == [
        ("李网格", "point", "后山滑坡点"),
        ("张村长", "village", "下溪村"),
    ]
    assert red["county_due_at"] == NOW - 4 * MIN  # issued 14 min ago, red: 10 min
    assert orange["answered"] == {"by": "王网格", "at": NOW - 20 * MIN, "channel": "sms"}
    assert orange["county_due_at"] is None
    assert yellow["county_due_at"] == NOW + 55 * MIN


def test_fleet_health_of_every_station_the_offline_first(conn: Any) -> None:
    fl = {s["id"]: s for s in views.fleet(conn, config(), NOW)}
    assert list(fl)[:2] == ["beishan", "hekou"] or list(fl)[:2] == ["hekou", "beishan"]
    assert fl["beishan"]["last_seen"] is None and not fl["beishan"]["online"]
    h = fl["hekou"]
    assert (h["online"], h["backlog"], h["clock_offset_ms"]) == (False, 18_400, 312_000)
    assert h["plan"]["errors"] and h["plan"]["version"] == "2026.11-3"
    x = fl["xikou"]
    assert x["online"] and x["name"] == "溪口镇" and x["version"] == "0.9.3"
    assert x["warnings"]["red"] == 1 and x["devices"] == {"online": 2, "total": 2}


def test_the_map_colours_points_and_stations_by_their_highest_warning(conn: Any) -> None:
    m = views.county_map(conn, config(), NOW)
    pts = {(p["station"], p["name"]): p["level"] for p in m["points"]}
    assert pts[("xikou", "后山滑坡点")] == "red" and pts[("xikou", "溪口大桥")] is None
    st = {s["name"]: s for s in m["stations"]}
    assert st["溪口镇"]["level"] == "red" and st["溪口镇"]["unanswered"]
    assert st["山尾乡"]["level"] == "orange" and not st["山尾乡"]["unanswered"]
    assert not st["河口街道"]["online"]


class Modem:
    """A fake SMS channel: what it was asked to send."""

    name = "sms"

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Delivery] = []
        self.fail = fail
        self.changed: asyncio.Event | None = None

    async def until_sent(self, words: str) -> None:
        """Wait for a message with these words (the test's own time limit bounds it)."""
        self.changed = self.changed or asyncio.Event()
        while True:
            self.changed.clear()
            if any(words in d.body["text"] for d in self.sent):
                return
            await self.changed.wait()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, d: Delivery) -> None:
        if self.fail:
            raise DeliveryError("modem: no network")
        self.sent.append(d)
        if self.changed is not None:
            self.changed.set()


def test_an_unanswered_red_opens_one_county_ticket_and_calls_duty_and_leader(
    dsn: str, conn: Any
) -> None:
    cfg = config()
    other = psycopg.connect(dsn, autocommit=True)  # a second county instance
    try:
        first = escalation.step(conn, cfg, NOW)
        again = escalation.step(other, cfg, NOW + 1000)
    finally:
        other.close()
    assert len(first) == 1 and again == []  # the red of 溪口镇 only, once
    modem = Modem()
    assert asyncio.run(escalation.send_calls(conn, cfg, {"sms": modem})) == 2
    assert sorted(d.target for d in modem.sent) == ["13900000001", "13900000003"]
    assert "溪口镇后山滑坡点红色预警，乡镇10分钟内未应答" in modem.sent[0].body["text"]
    (tk,) = views.county_tickets(conn, cfg)
    assert (tk["station_name"], tk["point"], tk["level"], tk["state"]) == (
        "溪口镇",
        "后山滑坡点",
        "red",
        "open",
    )
    assert tk["unanswered_min"] == 10
    assert {(c["name"], c["role"], c["outcome"]) for c in tk["calls"]} == {
        ("王值班", "duty", "sent"),
        ("刘局长", "leader", "sent"),
    }
    ws = views.warnings(conn, cfg, NOW)
    assert ws[0]["county"]["state"] == "open"
    # the duty officer takes it; a second take is refused
    assert escalation.ack(conn, first[0], "wang", NOW + 60_000) is not None
    assert escalation.ack(conn, first[0], "wang", NOW + 61_000) is None
    (tk,) = views.county_tickets(conn, cfg)
    assert (tk["state"], tk["acked_by"]) == ("acked", "王值班")


def test_a_failing_modem_is_recorded_as_failed(dsn: str) -> None:
    cfg = config()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "INSERT INTO county_tickets (station, station_ticket, level, state, opened_at, reason) "
            "VALUES ('dongling', 99, 'red', 'open', now(), 'unanswered:600') RETURNING id"
        )
        tid = c.execute("SELECT max(id) FROM county_tickets").fetchone()[0]
        c.execute(
            "INSERT INTO county_calls (ticket_id, at, person, role, channel, target, outcome) "
            "VALUES (%s, now(), 'wang', 'duty', 'sms', '13900000001', 'pending')",
            (tid,),
        )
        assert asyncio.run(escalation.send_calls(c, cfg, {"sms": Modem(fail=True)})) == 0
        ((outcome, detail),) = c.execute(
            "SELECT outcome, detail FROM county_calls WHERE ticket_id = %s", (tid,)
        ).fetchall()
        assert (outcome, detail) == ("failed", "modem: no network")
        # the warning it escalated is not in force: the next pass closes the ticket
        escalation.step(c, cfg, NOW)
        (state,) = c.execute("SELECT state FROM county_tickets WHERE id = %s", (tid,)).fetchone()
        assert state == "closed"


def test_one_station_its_ledger_and_trend(conn: Any) -> None:
    d = views.station_detail(conn, config(), "xikou", NOW)
    assert d is not None and d["name"] == "溪口镇"
    kinds = {(t["id"], t["kind"]) for t in d["tickets"]}
    assert {(12, "warning"), (13, "hazard")} <= kinds
    red = next(t for t in d["tickets"] if t["id"] == 12)
    assert [e["kind"] for e in red["events"]] == ["warning_issued", "called", "escalated"]
    assert red["events"][1]["callee"]["name"] == "李网格"
    assert d["series"] == [
        {
            "device": "rg-01",
            "metric": "rain_mm",
            "device_name": "后山雨量计",
            "metric_name": "雨量",
            "unit": "mm",
        }
    ]
    pts = views.readings(conn, "xikou", "rg-01", "rain_mm", NOW - 86_400_000, NOW)
    assert 250 <= len(pts) <= 288 and all(v is not None for _, v in pts)
    assert views.station_detail(conn, config(), "nowhere", NOW) is None


def test_the_monthly_report_per_township(conn: Any) -> None:
    from zoneinfo import ZoneInfo

    last = datetime.fromtimestamp(last_month(NOW) / 1000, ZoneInfo("Asia/Shanghai"))
    r = views.monthly(conn, config(), last.year, last.month)
    rows = {x["name"]: x for x in r["townships"]}
    assert set(rows) == {"溪口镇", "山尾乡", "东岭镇", "河口街道", "北山乡"}
    x = rows["溪口镇"]
    assert x["warnings"] == {"red": 0, "orange": 1, "yellow": 1, "blue": 0}
    assert (x["answered"], x["answer_median_s"]) == (1, 240)
    assert (rows["山尾乡"]["hazards"], rows["山尾乡"]["hazards_closed"]) == (1, 1)
    assert rows["河口街道"]["faults"] == 1
    assert r["total"]["warnings"]["orange"] == 1


def test_the_loop_escalates_calls_and_carries_on_after_the_database_went_away(dsn: str) -> None:
    """`run` as the service runs it: a red at 山尾乡 unanswered for 30 minutes is
    escalated and called; the loop's connection killed under it is made again."""
    cfg = config()
    with psycopg.connect(dsn, autocommit=True) as c:
        at = datetime.fromtimestamp((NOW - 30 * MIN) / 1000, UTC)
        c.execute(
            "INSERT INTO tickets (station, id, kind, level, state, point, opened_at, seq) "
            "VALUES ('shanwei', 50, 'warning', 'red', 'issued', 'tan', %s, 900)",
            (at,),
        )

    class Source:
        def connect(self) -> Any:
            return psycopg.connect(dsn)

    modem = Modem()

    async def scenario() -> None:
        task = asyncio.create_task(
            escalation.run(
                cfg, Source(), interval_s=0.05, channels={"sms": modem}, clock=lambda: NOW
            )
        )
        try:
            await modem.until_sent("山尾乡潭下河段红色预警")
            with psycopg.connect(dsn, autocommit=True) as c:  # PostgreSQL drops the loop's session
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND datname = 'county' AND state = 'idle'"
                )
                c.execute(
                    "INSERT INTO tickets (station, id, kind, level, state, point, opened_at, seq) "
                    "VALUES ('dongling', 51, 'warning', 'orange', 'issued', 'lingtou', %s, 901)",
                    (at,),
                )
            await modem.until_sent("东岭镇岭头沟橙色预警")
        finally:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=60)
        assert task in done and task.cancelled()  # the loop stops when the service stops

    asyncio.run(scenario())
    with psycopg.connect(dsn) as c:
        n = c.execute(
            "SELECT count(*) FROM county_tickets WHERE station_ticket IN (50, 51)"
        ).fetchone()
    assert n == (2,)


def test_county_users_the_station_roles_hashes_and_throttle(dsn: str, conn: Any) -> None:
    from gateway.core.errors import GatewayError

    people = {"wang", "liu"}
    assert users.cmd_users_add(dsn, "duty1", "duty_officer", "wang", people, "long-enough-pw") == 0
    with pytest.raises(GatewayError):
        users.cmd_users_add(dsn, "duty2", "duty_officer", "nobody", people, "long-enough-pw")
    with pytest.raises(GatewayError):
        users.cmd_users_add(dsn, "duty3", "duty_officer", None, people, "short")
    with pytest.raises(users.UserError):
        users.add_user(conn, "duty1", "viewer", "long-enough-pw", None, NOW)
    with pytest.raises(users.UserError):
        users.add_user(conn, "x", "mayor", "long-enough-pw", None, NOW)
    (stored,) = conn.execute("SELECT password FROM county_users WHERE name = 'duty1'").fetchone()
    assert stored.startswith("scrypt$") and "long-enough-pw" not in stored
    wrong = users.login(conn, "duty1", "not-the-password", None, NOW)
    assert (wrong.session, wrong.why) == (None, "wrong")
    ok = users.login(conn, "duty1", "long-enough-pw", None, NOW)
    assert ok.session is not None and ok.token is not None
    s = users.session(conn, ok.token, NOW + 1000)
    assert s is not None and (s.user.name, str(s.user.role), s.user.person) == (
        "duty1",
        "duty_officer",
        "wang",
    )
    users.logout(conn, ok.token)
    assert users.session(conn, ok.token, NOW + 2000) is None
    assert [a["action"] for a in users.read_audit(conn, 5)][:1] == ["user.add"]
