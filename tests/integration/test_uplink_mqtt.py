"""The MQTT uplink against a second real Mosquitto as the county broker, which is stopped
for a while and started again during the run: every reading, ticket event and health
change arrives, in order, once repeats are dropped by seq."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import Level
from gateway.tickets.model import TicketKind
from gateway.uplinks import outbox
from tests.conftest import free_port
from tests.integration.county import (
    CountyBroker,
    CountySubscriber,
    Station,
    reading_batch,
    station_config,
)

pytestmark = pytest.mark.integration


def test_everything_arrives_in_order_after_the_county_broker_comes_back(
    tmp_path: Path,
) -> None:
    broker = CountyBroker(tmp_path / "county")
    broker.start()
    sub = CountySubscriber(broker.port, "test")
    cfg = station_config(
        tmp_path,
        {"mqtt": {"host": "127.0.0.1", "port": broker.port, "batch_size": 100, "inflight": 20}},
    )

    async def run() -> dict[str, object]:
        st = Station(cfg)
        await st.uplinks.start()
        mqtt_link = st.uplinks.links[0]
        try:
            n = 0
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
            await st.until(lambda: sub.high() > 0)
            broker.stop()  # the county goes away while the station keeps committing
            await st.until(lambda: not mqtt_link.connected)
            tid = await st.on_writer(
                lambda s: s.open_ticket(
                    kind=TicketKind.HAZARD,
                    level=Level.ORANGE,
                    title="滑坡",
                    device="rg-01",
                    metric="rain_mm",
                    point="p1",
                    rule="r",
                    value=8.5,
                    reason="why",
                    actor="rule:r",
                    at=1,
                )
            )
            await st.on_writer(lambda s: s.device_status("rg-02", True, 2))
            for _ in range(20):
                await st.ingest(reading_batch(n, 500))
                n += 500
            down_backlog = await st.status()
            await asyncio.sleep(1.5)  # a while without the county
            broker.start()
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
            newest = await st.newest()
            await st.until(lambda: sub.high() >= newest)
            feed = st.uplinks.feeds["mqtt"]
            await st.until(lambda: feed.confirmed >= newest)
            await st.uplinks.housekeep()
            return {
                "n": n,
                "newest": newest,
                "tid": tid,
                "down": down_backlog,
                "after": await st.status(),
                "rows_left": (await st.on_writer(lambda s: outbox.status(s.conn))).rows,
            }
        finally:
            await st.close()

    try:
        result = asyncio.run(run())
    finally:
        sub.close()
        broker.stop()

    got = sub.accepted()
    n = result["n"]
    assert isinstance(n, int)
    assert len(got) == n + 2  # every reading, the ticket event, the health change
    assert [seq for _, seq, _ in got] == list(range(1, n + 3))
    readings = [item for topic, _, item in got if topic == "county/test/readings"]
    expected = reading_batch(0, n).readings
    assert readings == [[r.device, r.metric, r.ts, r.value, 0] for r in expected]
    tickets = [item for topic, _, item in got if topic == "county/test/tickets"]
    assert tickets[0]["ticket"]["id"] == result["tid"]
    assert tickets[0]["ticket"]["level"] == "orange"
    assert tickets[0]["event"]["kind"] == "opened"
    health = [item for topic, _, item in got if topic == "county/test/health"]
    assert health[0]["health"] == {"device": "rg-02", "online": True, "at": 2}
    after = result["after"]
    assert isinstance(after, dict)
    link = after["uplinks"]["mqtt"]
    assert link["connected"] is True
    assert link["confirmed_seq"] == result["newest"]
    assert link["backlog"] == 0 and link["dropped"] == 0
    assert link["connections"] >= 2  # it did reconnect
    assert result["rows_left"] == 0  # confirmed rows are deleted
    down = result["down"]
    assert isinstance(down, dict)
    assert down["uplinks"]["mqtt"]["connected"] is False


def test_a_full_outbox_drops_oldest_readings_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The county is unreachable and the outbox's budget small: what is dropped is counted
    per uplink, logged as an error and shown in the API's answer; never silent."""
    cfg = station_config(
        tmp_path,
        {
            "outbox": {"max_mb": 0.05},
            "mqtt": {"host": "127.0.0.1", "port": free_port()},  # nothing listens
        },
    )

    async def run() -> dict[str, Any]:
        st = Station(cfg)
        await st.uplinks.start()
        try:
            for n in range(0, 5000, 500):
                await st.ingest(reading_batch(n, 500))
            await st.uplinks.housekeep()
            return await st.status()
        finally:
            await st.close()

    with caplog.at_level(logging.ERROR, "stationgw.outbox"):
        state = asyncio.run(run())
    link = state["uplinks"]["mqtt"]
    assert link["connected"] is False and link["confirmed_seq"] == 0
    assert link["dropped"] > 0
    assert link["backlog"] == 5000  # newest − confirmed: the dropped rows are in it
    assert state["outbox"]["rows"] == 5000 - link["dropped"]
    assert state["outbox"]["est_bytes"] <= state["outbox"]["budget_bytes"]
    assert "OUTBOX FULL" in caplog.text
