"""Reports without `ts` keep the durability contract (issue 21, items 2 and 3): never
collapsed because they share a receive millisecond, recognised on redelivery by `seq`,
counted when they carry neither; retained telemetry is not a new reading."""

from __future__ import annotations

import asyncio
import json

from drivers.link.mqtt_client import Message
from tests.unit.ingest.test_whole_path import RX, query, station

TOPIC = "stations/test/rg-01/telemetry"


def untimed(value: float, seq: int | None = None) -> bytes:
    body: dict[str, object] = {"values": {"rain_mm": value}}
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body).encode()


def message(payload: bytes, mid: int, received: int = RX, retain: bool = False) -> Message:
    return Message(TOPIC, payload, 1, mid, received, 1, 0, retain)


def test_a_burst_in_one_millisecond_is_stored_whole() -> None:
    """Measured by the outside probe: 263 of 300 lost. Now 300 of 300."""
    with station() as (pipe, _, _):
        burst = [message(untimed(i % 7), i) for i in range(300)]  # values repeat too
        asyncio.run(pipe._handle(burst[:150]))
        asyncio.run(pipe._handle(burst[150:]))
        stamps = [ts for (ts,) in query(pipe, "SELECT ts FROM readings ORDER BY ts")]
        assert len(stamps) == 300
        assert stamps == list(range(RX, RX + 300))  # one millisecond each, in order
        assert pipe.metrics.unkeyed._value.get() == 300  # neither ts nor seq: counted


def test_a_redelivery_is_recognised_by_seq() -> None:
    """A redelivery comes later with a new receive time (a broker restart: 179 of 1,500
    stored twice before); the seq and values say it is the same report."""
    with station() as (pipe, _, _):
        first = [message(untimed(1.0 + i, seq=i), i + 1) for i in range(10)]
        asyncio.run(pipe._handle(first))
        again = [message(m.payload, m.mid, received=RX + 60_000) for m in first[4:]]
        asyncio.run(pipe._handle([*again, message(untimed(5.0, seq=10), 11, RX + 60_000)]))
        assert query(pipe, "SELECT count(*) FROM readings") == [(11,)]
        assert pipe.metrics.duplicates._value.get() == 6
        # the same seq with other values: the device restarted its numbering, a new report
        asyncio.run(pipe._handle([message(untimed(42.0, seq=3), 12, RX + 120_000)]))
        assert query(pipe, "SELECT count(*) FROM readings") == [(12,)]
        assert pipe.metrics.unkeyed._value.get() == 0


def test_an_untimed_report_never_takes_a_timed_readings_millisecond() -> None:
    with station() as (pipe, _, _):
        timed = json.dumps({"ts": RX, "values": {"rain_mm": 1.0}}).encode()
        asyncio.run(pipe._handle([message(timed, 1)]))
        asyncio.run(pipe._handle([message(untimed(2.0, seq=1), 2), message(timed, 3)]))
        rows = query(pipe, "SELECT ts, value FROM readings ORDER BY ts")
        assert rows == [(RX, 1.0), (RX + 1, 2.0)]
        # its redelivery is recognised at the millisecond it was moved to
        asyncio.run(pipe._handle([message(untimed(2.0, seq=1), 4, RX + 5)]))
        assert len(query(pipe, "SELECT ts FROM readings")) == 2


def test_retained_telemetry_is_not_a_new_reading() -> None:
    with station() as (pipe, source, _):
        asyncio.run(pipe._handle([message(untimed(3.0), 1, retain=True)]))
        assert query(pipe, "SELECT count(*) FROM readings") == [(0,)]
        assert query(pipe, "SELECT count(*) FROM quarantine") == [(0,)]
        assert pipe.metrics.retained_ignored._value.get() == 1
        assert source.acked == [1]
