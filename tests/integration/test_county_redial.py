"""The county calls again until someone at the county takes the ticket (叫应 at the top
of the grid), over a throwaway PostgreSQL, time passed in: the red of 溪口镇 unanswered
for 14 minutes opens a county ticket and calls 王值班 and 刘局长; nobody takes it, so every
`redial_s` (5 minutes) another round goes out, saying which call it is, up to `rounds`
(3); two instances deciding the same round make it once; once taken, no more rounds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from gateway.county import escalation
from gateway.county.config import CountyConfig
from tests.county_data import COUNTY, fill
from tests.county_pg import migrate, postgres

pytestmark = pytest.mark.integration

MIN = 60_000


def test_the_county_calls_again_until_someone_takes_the_ticket() -> None:
    now = int(time.time() * 1000)
    cfg = CountyConfig.model_validate(
        {**COUNTY, "escalation": {**COUNTY["escalation"], "redial_s": 300, "rounds": 3}}
    )
    with postgres() as dsn:
        at = datetime.fromtimestamp(now / 1000, UTC)
        migrate(dsn, tuple(at - timedelta(days=d) for d in range(0, 70, 5)))
        with psycopg.connect(dsn, autocommit=True) as conn:
            fill(conn, now)

            def rounds() -> list[tuple[str, list[str]]]:
                """(text of the round, who was called) per round, by time."""
                rows = conn.execute(
                    "SELECT c.at, c.person, c.detail FROM county_calls c JOIN county_tickets t "
                    "ON t.id = c.ticket_id WHERE t.station = 'xikou' ORDER BY c.at, c.person"
                ).fetchall()
                out: dict[datetime, tuple[str, list[str]]] = {}
                for when, person, text in rows:
                    out.setdefault(when, (text, []))[1].append(person)
                return list(out.values())

            assert escalation.step(conn, cfg, now) != []  # round 1: the red of 溪口镇
            (first,) = rounds()
            assert first[1] == ["liu", "wang"]
            assert first[0].startswith("【青山县应急管理局】溪口镇后山滑坡点红色预警")

            escalation.step(conn, cfg, now + 4 * MIN)  # before redial_s: nothing
            assert len(rounds()) == 1

            # 5 minutes on, two instances decide at once: one second round
            stale = escalation.decide(
                escalation.load_warnings(conn),
                escalation.load_county_open(conn),
                cfg.escalation,
                now + 5 * MIN,
            )
            assert [type(d) for d in stale] == [escalation.Redial]
            escalation.step(conn, cfg, now + 5 * MIN)
            escalation.apply(conn, stale, cfg, now + 5 * MIN, {})  # the other instance
            second = rounds()[1]
            assert len(rounds()) == 2 and second[1] == ["liu", "wang"]
            assert second[0].startswith("【青山县应急管理局】（第2次呼叫，县里尚无人签收）溪口镇")

            escalation.step(conn, cfg, now + 10 * MIN)
            escalation.step(conn, cfg, now + 15 * MIN)  # 3 rounds made: no fourth
            escalation.step(conn, cfg, now + 60 * MIN)
            texts = [r[0] for r in rounds()]
            assert len(texts) == 3 and "第3次呼叫" in texts[2]

        # another county ticket, taken after its first round: never called again
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM county_calls")
            conn.execute("DELETE FROM county_tickets")
            escalation.step(conn, cfg, now)
            (cid,) = conn.execute(
                "SELECT id FROM county_tickets WHERE station = 'xikou'"
            ).fetchone()
            assert escalation.ack(conn, cid, "王值班", now + MIN) is not None
            escalation.step(conn, cfg, now + 30 * MIN)
            (n,) = conn.execute(
                "SELECT count(DISTINCT at) FROM county_calls WHERE ticket_id = %s", (cid,)
            ).fetchone()
            assert n == 1
