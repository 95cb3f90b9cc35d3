"""The InfluxDB uplink against a real InfluxDB 1.x server (Debian's `influxdb`, started
here on random ports with its own config and data folder).

- mode v1 writes straight to its `/write?db=`;
- mode v2 (influxdb-client) goes through `influx_v2_proxy`, a TEST-ONLY proxy that maps
  `/api/v2/write?bucket=B&precision=P` to `/write?db=B&precision=…` (ns/us/ms/s to
  n/u/ms/s) exactly as InfluxDB 1.8+ does natively; Debian's 1.6 has no v2 endpoint.

Points are read back with InfluxQL and compared, count and values. The server is
stopped during the run and started again on the same port and data folder: every point
arrives after it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.model import Level
from gateway.tickets.model import TicketKind
from tests.integration.county import Station, reading_batch, station_config
from tests.integration.influx_server import InfluxServer
from tests.integration.influx_v2_proxy import V2Proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influx")
    server.start()
    try:
        server.query("CREATE DATABASE county")
        yield server
    finally:
        server.stop()


def _uplink(mode: str, url: str) -> dict[str, object]:
    common = {"url": url, "batch_size": 700, "timeout_s": 2}
    if mode == "v1":
        return {"influx": {**common, "mode": "v1", "database": "county"}}
    return {"influx": {**common, "mode": "v2", "bucket": "county", "org": "-", "token": "u:p"}}


@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_every_point_arrives_after_an_influx_outage(
    tmp_path: Path, influx: InfluxServer, mode: str
) -> None:
    proxy = V2Proxy(influx.url) if mode == "v2" else None
    cfg = station_config(tmp_path, _uplink(mode, proxy.url if proxy else influx.url))

    async def run() -> int:
        st = Station(cfg)
        await st.uplinks.start()
        link = st.uplinks.links[0]
        try:
            await st.until(lambda: link.connected)  # idle, it pings: the status is true
            n = 0
            for _ in range(4):
                await st.ingest(reading_batch(n, 1000))
                n += 1000
            await st.until(lambda: st.uplinks.feeds["influx"].confirmed > 0)
            influx.stop()
            for _ in range(4):
                await st.ingest(reading_batch(n, 1000))
                n += 1000
            await st.on_writer(
                lambda s: s.open_ticket(
                    kind=TicketKind.WARNING,
                    level=Level.RED,
                    title="红色预警",
                    device=None,
                    metric=None,
                    point="p1",
                    rule=None,
                    value=None,
                    reason=None,
                    actor="rule:r",
                    at=1_780_000_000_500,
                )
            )
            await st.until(lambda: not link.connected)
            await asyncio.sleep(1.0)
            influx.start()
            for _ in range(2):
                await st.ingest(reading_batch(n, 1000))
                n += 1000
            newest = await st.newest()
            await st.until(lambda: st.uplinks.feeds["influx"].confirmed >= newest)
            return n
        finally:
            await st.close()

    try:
        n = asyncio.run(run())
    finally:
        if proxy is not None:
            proxy.close()
    if proxy is not None:
        assert proxy.requests > 0  # the client's requests did go the v2 way
    (count,) = influx.query('SELECT COUNT("value") FROM "reading"', "county")
    assert count["values"] == [[0, n]]  # type: ignore[index]
    series = influx.query(
        'SELECT "value" FROM "reading" WHERE "station" = \'test\' AND "point" = \'p1\' '
        'AND "village" = \'v1\' GROUP BY "device", "metric"',
        "county",
    )
    got = {
        (s["tags"]["device"], s["tags"]["metric"]): s["values"]  # type: ignore[index]
        for s in series
    }
    expected = reading_batch(0, n).readings
    for (device, metric), values in got.items():
        want = [[r.ts, r.value] for r in expected if r.device == device and r.metric == metric]
        assert values == want
    assert sum(len(v) for v in got.values()) == n
    (events,) = influx.query(
        'SELECT "ticket_id", "level", "kind", "event" FROM "ticket_event"', "county"
    )
    assert events["values"] == [[1_780_000_000_500, 1, "red", "warning", "opened"]]  # type: ignore[index]
