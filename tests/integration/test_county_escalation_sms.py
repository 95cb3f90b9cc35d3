"""Escalation to the county through the county's own SMS modem — the station's SMS
channel (gateway/notify/sms.py) against the GSM modem stub on a real pseudo-terminal —
over a throwaway PostgreSQL: a red warning a township has not answered in 10 minutes
opens a county ticket, the duty officer and the leader get an SMS in Chinese with the
reply code, and the duty officer's reply takes the county ticket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from firmware_stubs.gsm_modem import GsmModemStub
from gateway.county import escalation, views
from gateway.county.config import CountyConfig
from tests.county_data import COUNTY, fill
from tests.county_pg import migrate, postgres

pytestmark = pytest.mark.integration


@pytest.fixture
def modem() -> Iterator[GsmModemStub]:
    stub = GsmModemStub.open()
    yield stub
    stub.close()


async def until(cond: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    """Wait for `cond` (polled, as the modem stub has no events); fail after `limit_s`."""
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_the_county_calls_by_sms_and_a_reply_takes_the_ticket(modem: GsmModemStub) -> None:
    now = int(time.time() * 1000)
    cfg = CountyConfig.model_validate(
        {
            **COUNTY,
            "notify": {
                "mqtt": {"enabled": False},
                "sms": {"port": modem.port, "poll_s": 1, "timeout_s": 3},
            },
        }
    )
    with postgres() as dsn:
        at = datetime.fromtimestamp(now / 1000, UTC)
        migrate(dsn, tuple(at - timedelta(days=d) for d in range(0, 70, 5)))
        with psycopg.connect(dsn, autocommit=True) as conn:
            fill(conn, now)

        class Source:
            def connect(self) -> Any:
                return psycopg.connect(dsn)

        def state() -> str | None:
            with psycopg.connect(dsn) as c:
                row = c.execute(
                    "SELECT state FROM county_tickets WHERE station = 'xikou'"
                ).fetchone()
            return str(row[0]) if row else None

        async def scenario() -> None:
            task = asyncio.create_task(escalation.run(cfg, Source(), interval_s=0.2))
            try:
                await until(lambda: len(modem.sent) == 2, "two SMS: duty officer and leader")
                texts = dict(modem.sent)
                assert set(texts) == {"13900000001", "13900000003"}
                text = texts["13900000001"]
                assert text.startswith(
                    "【青山县应急管理局】溪口镇后山滑坡点红色预警，乡镇10分钟内未应答"
                )
                assert text.endswith("回复0001确认")
                modem.receive("+8613900000001", "0001 收到，马上联系溪口镇")
                deadline = time.monotonic() + 60
                while await asyncio.to_thread(state) != "acked":
                    assert time.monotonic() < deadline, "the reply did not take the ticket"
                    await asyncio.sleep(0.1)
            finally:
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=60)
            assert task in done and task.cancelled()

        asyncio.run(scenario())
        with psycopg.connect(dsn) as conn:
            (tk,) = views.county_tickets(conn, cfg)
            assert (tk["state"], tk["acked_by"]) == ("acked", "王值班")  # the phone's person
            assert {(c["name"], c["channel"], c["outcome"]) for c in tk["calls"]} == {
                ("王值班", "sms", "sent"),
                ("刘局长", "sms", "sent"),
            }
