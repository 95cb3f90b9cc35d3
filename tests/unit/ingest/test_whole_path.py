"""The whole path of a telemetry message under hypothesis (issue 21, item 7).

Payloads over the full JSON space (huge and negative integers, floats at the edges, every
timestamp format, unicode, nesting, lists of any length) go through the real pipeline:
decode -> screen -> rules -> commit (real SQLite, real rules and tickets) -> sequence
bookkeeping -> acknowledgement. After every batch:

- the pipeline never raised, and every message was acknowledged;
- every message is stored or quarantined with a reason (quarantine rows = the messages an
  independent reading of the payload says cannot be taken whole);
- every acknowledged reading is stored exactly once: the readings table holds exactly the
  distinct (device, metric, ts) keys of timed reports plus one row per untimed reading
  that is not a redelivery (same device, seq and values).

Fixed seed and example count, so CI runs the same cases every time; the seq strategy
reaches past 2^63, which found the OverflowError of issue 21 (checked by running this
against the schema without the bound).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from drivers.link.mqtt_client import Message
from drivers.mqtt_json.codec import MAX_REPORTS, MAX_TS_MS, MIN_TS_MS, decode_telemetry
from gateway.config.station import parse_config
from gateway.core.errors import PayloadError
from gateway.events import Hub
from gateway.ingest.commit import Ingestor
from gateway.ingest.dead_letter import DeadLetters
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.registry import Registry
from gateway.ingest.rules_loader import RulesLoader
from gateway.metrics import Metrics
from gateway.tickets.desk import Desk
from gateway.tickets.store import StationStore
from tests.conftest import RULES, STATION

RX = 1_780_000_000_000
KNOWN = {"rg-01", "rg-02"}
METRICS = {"rain_mm", "battery_v"}
TOPICS = [
    "stations/test/rg-01/telemetry",
    "stations/test/rg-02/telemetry",
    "stations/test/rg-01/status",
    "stations/test/zz-9/telemetry",  # not configured
    "stations/other/rg-01/telemetry",  # another station's
    "stations/test/rg\u202e-01/telemetry",  # a bidirectional control in the device id
]


class Source:
    """What the pipeline acknowledges to (the MQTT client's side of it)."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, messages: list[Message]) -> int:
        self.acked.extend(m.mid for m in messages)
        return len(messages)


@dataclass
class Oracle:
    """An independent reading of what must be stored, from the payloads alone."""

    keys: set[tuple[str, str, int]] = field(default_factory=set)
    untimed: int = 0
    seen: dict[tuple[str, int], tuple[tuple[str, float], ...]] = field(default_factory=dict)
    quarantined: int = 0

    def take(self, msg: Message) -> None:
        parts = msg.topic.split("/")
        device = parts[2]
        if parts[1] != "test" or device not in KNOWN:
            self.quarantined += 1
            return
        if parts[3] == "status":
            if msg.payload.strip() not in (b"online", b"offline"):
                self.quarantined += 1
            return
        try:
            reports = decode_telemetry(msg.payload, msg.received_ms)
        except PayloadError:
            self.quarantined += 1
            return
        unknown = False
        for r in reports:
            known = [(m, v) for m, v in r.values if m in METRICS]
            unknown = unknown or len(known) < len(r.values)
            if r.timed:
                self.keys.update((device, m, r.ts) for m, _ in known)
            elif r.seq is None or self.seen.get((device, r.seq)) != r.values:
                self.untimed += len(known)
                if r.seq is not None:
                    self.seen[(device, r.seq)] = r.values
        self.quarantined += unknown


@contextmanager
def station() -> Iterator[tuple[Pipeline, Source, StationStore]]:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "rules.toml").write_text(RULES)
        text = STATION.format(broker_port=1883, http_port=0)
        cfg = parse_config(tomllib.loads(text), folder / "station.toml")
        loader = RulesLoader(cfg)
        loader.load()
        writer = ThreadPoolExecutor(1)  # the store lives on its writer thread, as in the gateway

        def open_store() -> tuple[StationStore, Ingestor]:
            store = StationStore(cfg.database.path)
            store.register_devices([dv.id for dv in cfg.devices])
            return store, Ingestor(store, loader.ruleset(), Desk(store, cfg))

        store, ingestor = writer.submit(open_store).result()
        source = Source()
        pipe = Pipeline(
            source,  # type: ignore[arg-type]
            ingestor,
            writer,
            Registry(cfg),
            Hub(),
            Metrics(),
            batch_max=100,
            dead_letters=DeadLetters(folder / "inflight"),
        )
        try:
            yield pipe, source, store
        finally:
            writer.submit(store.close).result()
            writer.shutdown()


# --- the JSON space --------------------------------------------------------------------

big_ints = st.one_of(
    st.integers(),
    st.integers(2**62, 2**65),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**400, -(10**400)]),
)
edge_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308]),
)
json_leaf = st.one_of(st.none(), st.booleans(), big_ints, edge_floats, st.text(max_size=12))
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    kind = draw(st.sampled_from(["offset", "z", "naive", "date"]))
    if kind == "naive":
        return moment.isoformat()
    if kind == "date":
        return moment.date().isoformat()
    if kind == "z":
        return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    offset = timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    return moment.replace(tzinfo=offset).isoformat()


recent_iso = st.integers(MIN_TS_MS, MAX_TS_MS).map(
    lambda ms: datetime.fromtimestamp(ms / 1000, UTC).isoformat()
)
timestamps = st.one_of(
    st.integers(MIN_TS_MS - 2, MAX_TS_MS + 2),
    st.integers(RX - 5, RX + 5),  # the same milliseconds again and again
    big_ints,
    edge_floats,
    st.floats(MIN_TS_MS, MAX_TS_MS),
    iso_times(),
    recent_iso,
    st.integers(MIN_TS_MS, MAX_TS_MS).map(str),  # a number in a string
    st.booleans(),
    json_any,
)
metric_names = st.sampled_from(["rain_mm", "battery_v", "nope", "", "雨量", "rain\u202emm"])
values = st.one_of(
    st.dictionaries(metric_names, st.one_of(st.floats(-10, 60), big_ints, edge_floats, json_leaf)),
    json_any,
)


@st.composite
def reports(draw: st.DrawFn) -> Any:
    report: dict[str, Any] = {}
    if draw(st.booleans()):
        report["ts"] = draw(timestamps)
    if draw(st.booleans()):
        report["seq"] = draw(st.one_of(st.integers(0, 5), big_ints, json_leaf))
    report["values"] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        report[draw(st.text(max_size=5))] = draw(json_any)
    return report


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["one", "list", "long", "other", "bytes", "cut"]))
    if shape == "one":
        body: Any = draw(reports())
    elif shape == "list":
        body = draw(st.lists(reports(), max_size=8))
    elif shape == "long":  # at, just over and far over the documented limit
        one = draw(reports())
        body = [one] * draw(st.sampled_from([MAX_REPORTS, MAX_REPORTS + 1, 3 * MAX_REPORTS]))
    elif shape == "other":
        body = draw(json_any)
    elif shape == "bytes":
        return draw(st.binary(max_size=64))
    else:
        return json.dumps(draw(reports())).encode()[: draw(st.integers(0, 40))]
    return json.dumps(body, allow_nan=True).encode()


status_bodies = st.sampled_from([b"online", b"offline", b"on", b"\xff\xfe"])


@st.composite
def messages(draw: st.DrawFn) -> list[Message]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        topic = draw(st.sampled_from(TOPICS))
        payload = draw(status_bodies if topic.endswith("/status") else bodies())
        # several in one millisecond: a burst of untimed reports must all be stored
        out.append(Message(topic, payload, 1, i + 1, RX + draw(st.integers(0, 2)), 1))
    return out


def query(pipe: Pipeline, sql: str) -> list[Any]:
    """Read the store on its writer thread (where the gateway reads it too)."""
    conn = pipe.ingestor.store.conn
    return pipe.writer.submit(lambda: conn.execute(sql).fetchall()).result()


@seed(21)
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(messages(), min_size=1, max_size=4))
def test_every_message_is_stored_once_or_quarantined_and_the_gateway_goes_on(
    batches: list[list[Message]],
) -> None:
    oracle = Oracle()
    with station() as (pipe, source, _):
        for batch in batches:
            asyncio.run(pipe._handle(batch))  # never raises
            for msg in batch:
                oracle.take(msg)
            assert source.acked[-len(batch) :] == [m.mid for m in batch]  # all acknowledged
            # quarantined with a reason, exactly those that cannot be taken whole
            reasons = query(pipe, "SELECT reason FROM quarantine")
            assert len(reasons) == oracle.quarantined
            assert all(r and len(r) <= 500 for (r,) in reasons)
            # stored exactly once: the timed keys, plus each untimed reading not redelivered
            rows = query(
                pipe,
                "SELECT s.device, s.metric, r.ts FROM readings r JOIN series s "
                "ON s.id = r.series_id",
            )
            assert oracle.keys <= set(rows)
            assert len(rows) == len(oracle.keys) + oracle.untimed
        assert query(pipe, "PRAGMA integrity_check") == [("ok",)]
