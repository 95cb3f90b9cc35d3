"""Station → county over the real bus: the `nats` uplink against a 3-node JetStream
cluster, `stationgw county -c` processes consuming into a throwaway PostgreSQL. Nodes,
county instances and PostgreSQL are killed or restarted mid-stream; nothing is lost and
nothing is stored twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from gateway.core.model import Level
from gateway.devtools.cluster import NatsCluster
from gateway.devtools.pg import ThrowawayPostgres
from gateway.tickets.model import TicketKind
from tests.integration.county import Station, reading_batch, station_config
from tests.integration.county_bus import (
    CountyProcess,
    county_toml,
    lost_and_duplicates,
    query,
    readings_of,
    scalar,
    until,
    wait_stream,
)

pytestmark = pytest.mark.integration

__all__ = ["cluster", "pg"]
from tests.integration.county_bus import cluster, pg  # noqa: E402  (fixtures)


def _county(tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres, **kw: Any) -> Path:
    path = tmp_path / "county.toml"
    path.write_text(county_toml(cluster, pg, ["test", "mq"], **kw))
    return path


def _nats_station(tmp_path: Path, cluster: NatsCluster) -> Any:
    return station_config(
        tmp_path,
        {"nats": {"servers": cluster.urls, "batch": 100, "inflight": 16, "state_interval_s": 1}},
    )


async def _open_ticket(st: Station) -> int:
    tid: int = await st.on_writer(
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
            at=1_780_000_000_000,
        )
    )
    return tid


def test_station_to_county_survives_a_nats_node_killed_mid_stream(
    tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres
) -> None:
    county = CountyProcess(_county(tmp_path, cluster, pg), tmp_path / "county.log")
    county.start()
    cfg = _nats_station(tmp_path, cluster)

    async def run() -> dict[str, Any]:
        st = Station(cfg)
        await st.uplinks.start()
        link = st.uplinks.links[0]
        try:
            n = 0
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
            await asyncio.to_thread(until, lambda: readings_of(pg.dsn, "test") > 0, 120, "first")
            cluster.kill(0)  # kill -9 of one node while readings flow
            for _ in range(20):
                await st.ingest(reading_batch(n, 500))
                n += 500
                await asyncio.sleep(0.05)
            tid = await _open_ticket(st)
            await st.on_writer(lambda s: s.device_status("rg-02", True, 2))
            cluster.start(0)  # it returns
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
            newest = await st.newest()
            await st.until(lambda: st.uplinks.feeds["nats"].confirmed >= newest, 180)
            await asyncio.to_thread(
                until, lambda: readings_of(pg.dsn, "test") >= n, 180, "all readings"
            )
            return {"n": n, "tid": tid, "status": await st.status(), "link": link.status()}
        finally:
            await st.close()

    try:
        result = asyncio.run(run())
        until(lambda: scalar(pg.dsn, "SELECT count(*) FROM ticket_events") >= 1, 60, "event")
        until(lambda: scalar(pg.dsn, "SELECT count(*) FROM device_health") >= 1, 60, "health")
    finally:
        county.stop()
    n = result["n"]
    assert lost_and_duplicates(pg.dsn, "test", n) == (0, 0)
    assert readings_of(pg.dsn, "test") == n
    expected = reading_batch(0, n).readings
    got = query(
        pg.dsn,
        "SELECT device, metric, (extract(epoch FROM ts) * 1000)::bigint, value FROM readings "
        "WHERE station = 'test' ORDER BY seq",
    )
    assert got == [(r.device, r.metric, r.ts, r.value) for r in expected]
    (ticket,) = query(pg.dsn, "SELECT id, level, state, title FROM tickets")
    assert ticket == (result["tid"], "orange", "discovered", "滑坡")
    (event,) = query(pg.dsn, "SELECT ticket_id, kind FROM ticket_events")
    assert event == (result["tid"], "opened")
    (health,) = query(pg.dsn, "SELECT device, online FROM device_health")
    assert health == ("rg-02", True)
    (station,) = query(
        pg.dsn,
        "SELECT name, clock_offset_ms, state->'devices', last_seen FROM stations WHERE id = 'test'",
    )
    assert station[0] == "测试站"  # the station's own name, from its state message
    assert station[1] is not None and station[3] is not None
    assert [d["id"] for d in station[2]] == ["rg-01", "rg-02", "rg-03"]
    assert scalar(pg.dsn, "SELECT count(*) FROM quarantine") == 0
    link = result["status"]["uplinks"]["nats"]
    assert link["backlog"] == 0 and link["dropped"] == 0


def test_two_county_instances_one_killed_the_other_carries_on(
    tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres
) -> None:
    config = _county(tmp_path, cluster, pg)
    a = CountyProcess(config, tmp_path / "county-a.log")
    b = CountyProcess(config, tmp_path / "county-b.log")
    a.start()
    b.start()
    until(lambda: a.consuming() and b.consuming(), 120, "both instances consuming")
    cfg = _nats_station(tmp_path, cluster)

    async def run() -> int:
        st = Station(cfg)
        await st.uplinks.start()
        try:
            n = 0
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
            await asyncio.to_thread(until, lambda: readings_of(pg.dsn, "test") > 0, 120, "first")
            a.kill9()  # one instance dies mid-stream, with whatever it had fetched
            for _ in range(20):
                await st.ingest(reading_batch(n, 500))
                n += 500
                await asyncio.sleep(0.05)
            await asyncio.to_thread(
                until, lambda: readings_of(pg.dsn, "test") >= n, 180, "all readings"
            )
            return n
        finally:
            await st.close()

    try:
        n = asyncio.run(run())
        assert b.alive() and not a.alive()
        health = b.health()
    finally:
        a.stop()
        b.stop()
    assert lost_and_duplicates(pg.dsn, "test", n) == (0, 0)
    assert health is not None and health["consumer"]["readings_stored"] > 0
    assert health["fleet"]["stations"] == 2


def test_bad_messages_are_quarantined_with_their_reason_and_the_consumer_goes_on(
    tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres
) -> None:
    county = CountyProcess(_county(tmp_path, cluster, pg, max_deliver=2), tmp_path / "c.log")
    county.start()
    good = {
        "station": "test",
        "seq": 1,
        "last": 1,
        "readings": [["rg-01", "rain_mm", 1_780_000_000_000, 1.5, 0]],
    }
    bad: list[tuple[str, bytes]] = [
        ("county.stranger.readings", json.dumps({**good, "station": "stranger"}).encode()),
        ("county.test.readings", b'{"station": "test", "seq": 2, "last": 2, "readings": [["rg-01"'),
        (
            "county.test.readings",
            json.dumps(
                {**good, "seq": 3, "last": 3, "readings": [["rg-01", "rain_mm", "soon", 1.0, 0]]}
            ).encode(),
        ),
        ("county.test.readings", b"x" * 600_000),
        # valid to the model, refused by PostgreSQL (a NUL in text): dead-lettered
        (
            "county.test.readings",
            json.dumps(
                {
                    **good,
                    "seq": 4,
                    "last": 4,
                    "readings": [["rg\u0000", "rain_mm", 1_780_000_000_000, 1.0, 0]],
                }
            ).encode(),
        ),
    ]

    async def run() -> None:
        nc = await nats.connect(servers=cluster.urls)
        js = nc.jetstream()
        until_stream = 0
        while True:  # the county service makes the stream
            try:
                await js.stream_info("COUNTY")
                break
            except Exception:
                until_stream += 1
                assert until_stream < 600, "no stream COUNTY"
                await asyncio.sleep(0.1)
        last = ("county.test.readings", json.dumps({**good, "seq": 5, "last": 5}).encode())
        for subject, payload in [*bad, last]:
            for attempt in range(100):  # until the new stream has its leader
                try:
                    await js.publish(subject, payload)
                    break
                except nats.errors.Error:
                    assert attempt < 99, "the stream never took a message"
                    await asyncio.sleep(0.1)
        await nc.close()

    try:
        asyncio.run(run())
        until(lambda: readings_of(pg.dsn, "test") >= 1, 120, "the good message")
        until(lambda: scalar(pg.dsn, "SELECT count(*) FROM quarantine") >= 5, 120, "quarantine")
        assert county.alive()
    finally:
        county.stop()
    rows = query(pg.dsn, "SELECT subject, station, reason FROM quarantine ORDER BY id")
    reasons = {r[2].split(":")[0] if "dead" not in r[2] else "dead": r for r in rows}
    assert len(rows) == 5
    assert any("'stranger' is not one of county.toml" in r[2] for r in rows)
    assert any("Invalid JSON" in r[2] or "json_invalid" in r[2] or "EOF" in r[2] for r in rows), (
        rows
    )
    assert any(r[2].startswith("readings[0][2]: ") for r in rows), rows
    assert any(r[2].startswith("oversized: 600000 bytes") for r in rows), rows
    dead = [r for r in rows if r[2].startswith("dead-lettered after 2 deliveries")]
    assert len(dead) == 1 and dead[0][1] == "test", reasons
    assert query(pg.dsn, "SELECT seq, value FROM readings") == [(5, 1.5)]


def test_postgres_restarted_mid_run_loses_nothing(
    tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres
) -> None:
    county = CountyProcess(_county(tmp_path, cluster, pg), tmp_path / "county.log")
    county.start()
    cfg = _nats_station(tmp_path, cluster)

    async def run() -> int:
        st = Station(cfg)
        await st.uplinks.start()
        try:
            n = 0
            for _ in range(5):
                await st.ingest(reading_batch(n, 500))
                n += 500
            await asyncio.to_thread(until, lambda: readings_of(pg.dsn, "test") > 0, 120, "first")
            await asyncio.to_thread(pg.stop, "immediate")  # a crash-like stop
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
            newest = await st.newest()
            # JetStream keeps it all while PostgreSQL is away
            await st.until(lambda: st.uplinks.feeds["nats"].confirmed >= newest, 120)
            await asyncio.sleep(2)  # the consumer is waiting on PostgreSQL now
            await asyncio.to_thread(pg.start)
            await asyncio.to_thread(
                until, lambda: readings_of(pg.dsn, "test") >= n, 180, "all readings"
            )
            return n
        finally:
            await st.close()

    try:
        n = asyncio.run(run())
        assert county.alive()
    finally:
        county.stop()
    assert lost_and_duplicates(pg.dsn, "test", n) == (0, 0)
    assert "PostgreSQL unreachable" in (tmp_path / "county.log").read_text()


def test_a_station_on_mqtt_reaches_the_stream_through_the_mqtt_listener(
    tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres
) -> None:
    county = CountyProcess(_county(tmp_path, cluster, pg), tmp_path / "county.log")
    county.start()
    node = cluster.nodes[1]
    assert node.mqtt_port is not None
    cfg = station_config(
        tmp_path,
        {"mqtt": {"host": node.host, "port": node.mqtt_port, "station": "mq", "batch_size": 100}},
    )

    async def run() -> int:
        st = Station(cfg)
        await st.uplinks.start()
        try:
            n = 0
            for _ in range(5):
                await st.ingest(reading_batch(n, 200))
                n += 200
            await asyncio.to_thread(until, lambda: readings_of(pg.dsn, "mq") >= n, 120, "mqtt")
            return n
        finally:
            await st.close()

    try:
        wait_stream(cluster.urls)  # MQTT messages are captured only once the stream exists
        n = asyncio.run(run())
    finally:
        county.stop()
    assert lost_and_duplicates(pg.dsn, "mq", n) == (0, 0)
    subjects = query(pg.dsn, "SELECT count(*) FROM quarantine")
    assert subjects == [(0,)]


# nats-py leaves a StreamWriter of a failed reconnect try to the garbage collector
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function StreamWriter.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)
def test_the_whole_cluster_down_and_back_the_station_buffers_and_loses_nothing(
    tmp_path: Path, cluster: NatsCluster, pg: ThrowawayPostgres
) -> None:
    """The county side's outage: every node stopped while the station commits, then all
    started again (the stream elects its leader while the station's resends arrive)."""
    county = CountyProcess(_county(tmp_path, cluster, pg), tmp_path / "county.log")
    county.start()
    cfg = _nats_station(tmp_path, cluster)

    async def run() -> tuple[int, dict[str, Any]]:
        st = Station(cfg)
        await st.uplinks.start()
        link = st.uplinks.links[0]
        try:
            n = 0
            for _ in range(5):
                await st.ingest(reading_batch(n, 500))
                n += 500
            await asyncio.to_thread(until, lambda: readings_of(pg.dsn, "test") > 0, 120, "first")
            await asyncio.to_thread(cluster.stop)
            for _ in range(10):
                await st.ingest(reading_batch(n, 500))
                n += 500
                await asyncio.sleep(0.3)
            tid = await _open_ticket(st)
            await asyncio.to_thread(cluster.start)
            for _ in range(5):
                await st.ingest(reading_batch(n, 500))
                n += 500
            newest = await st.newest()
            await st.until(lambda: st.uplinks.feeds["nats"].confirmed >= newest, 180)
            await asyncio.to_thread(
                until, lambda: readings_of(pg.dsn, "test") >= n, 180, "all readings"
            )
            assert tid
            return n, link.status()
        finally:
            await st.close()

    try:
        n, status = asyncio.run(run())
        until(lambda: scalar(pg.dsn, "SELECT count(*) FROM ticket_events") >= 1, 60, "event")
        order = asyncio.run(_stream_order(cluster.urls, "test"))
    finally:
        county.stop()
    assert lost_and_duplicates(pg.dsn, "test", n) == (0, 0)
    assert status["windows_resent"] > 0  # it did send again
    # the warning went ahead of the older readings the station had buffered
    (ticket,) = [(pos, seq) for pos, kind, seq in order if kind == "tickets"]
    older_after = [seq for pos, kind, seq in order if kind == "readings" and pos > ticket[0]]
    assert any(seq < ticket[1] for seq in older_after), order[:5]


async def _stream_order(urls: list[str], station: str) -> list[tuple[int, str, int]]:
    """(stream seq, kind, first outbox seq) of the station's outbox messages, in stream
    order."""
    nc = await nats.connect(servers=urls)
    try:
        sub = await nc.jetstream().subscribe(f"county.{station}.>", ordered_consumer=True)
        out = []
        while True:
            try:
                m = await sub.next_msg(timeout=2)
            except nats.errors.TimeoutError:
                return out
            kind = m.subject.rsplit(".", 1)[1]
            if kind != "state":
                out.append((m.metadata.sequence.stream, kind, json.loads(m.data)["seq"]))
    finally:
        await nc.close()
