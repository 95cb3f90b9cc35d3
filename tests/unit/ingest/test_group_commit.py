"""Group commit (`[storage] commit_wait_ms`): at a trickle, messages wait for each other so
that one commit stores several, but never longer than the bound.

The real pipeline, the real MQTT source's buffer (messages put in as paho's callback
puts them) and a real station database. At each acknowledgement the test looks in the
database through a connection of its own: acknowledged means stored. The bound is
checked with a wide tolerance for the commit itself on a loaded machine; the quiet
spell after the first message is longer than bound + tolerance, so a commit that waited
for company instead of for the bound fails the test.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from drivers.link.broker import Broker
from drivers.link.mqtt_client import Message, MqttSource
from gateway.config.station import parse_config
from gateway.core import clock
from gateway.events import Hub
from gateway.ingest.commit import Ingestor
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.registry import Registry
from gateway.ingest.rules_loader import RulesLoader
from gateway.metrics import Metrics
from gateway.tickets.desk import Desk
from gateway.tickets.store import StationStore
from tests.conftest import RULES, STATION

WAIT_S = 0.1
TOLERANCE_MS = 1500  # the commit itself (fsync) on a loaded CI machine
QUIET_S = 2.5  # > WAIT_S + TOLERANCE_MS: a commit waiting for company would show
T0 = 1_780_000_000_000


class Source(MqttSource):
    """The MQTT source without a broker: messages go into its buffer as `_on_message`
    puts them; each acknowledgement checks the database and notes when it was sent."""

    def __init__(self, db: Path) -> None:
        super().__init__(Broker(), [], capacity=1000)
        self.db = db
        self.acks: list[tuple[Message, int, bool]] = []  # (message, ack ms, stored then)

    def put(self, ts: int) -> Message:
        m = Message(
            "stations/test/rg-01/telemetry",
            b'{"ts":%d,"values":{"rain_mm":0.5}}' % ts,
            1,
            len(self.acks) + len(self._buffer) + 1,
            clock.now_ms(),
            0,
        )
        self._buffer.append(m)
        self._ready.set()
        return m

    def ack(self, messages: list[Message]) -> int:
        at = clock.now_ms()
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            for m in messages:
                ts = int(m.payload.split(b'"ts":')[1].split(b",")[0])
                row = conn.execute(
                    "SELECT 1 FROM readings r JOIN series s ON s.id = r.series_id "
                    "WHERE s.device = 'rg-01' AND s.metric = 'rain_mm' AND r.ts = ?",
                    (ts,),
                ).fetchone()
                self.acks.append((m, at, row is not None))
        conn.close()
        return len(messages)


@contextmanager
def station() -> Iterator[tuple[Pipeline, Source, Metrics]]:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "rules.toml").write_text(RULES)
        text = STATION.format(broker_port=1883, http_port=0)
        cfg = parse_config(tomllib.loads(text), folder / "station.toml")
        loader = RulesLoader(cfg)
        loader.load()
        writer = ThreadPoolExecutor(1)

        def open_store() -> tuple[StationStore, Ingestor]:
            store = StationStore(cfg.database.path)
            store.register_devices([dv.id for dv in cfg.devices])
            return store, Ingestor(store, loader.ruleset(), Desk(store, cfg))

        store, ingestor = writer.submit(open_store).result()
        source = Source(cfg.database.path)
        metrics = Metrics()
        pipe = Pipeline(
            source,
            ingestor,
            writer,
            Registry(cfg),
            Hub(),
            metrics,
            batch_max=100,
            commit_wait_s=WAIT_S,
        )
        try:
            yield pipe, source, metrics
        finally:
            writer.submit(store.close).result()
            writer.shutdown()


async def _run(pipe: Pipeline, source: Source, feed: list[float], total: int) -> None:
    """Put a message after each pause of `feed`; run until `total` are acknowledged."""
    task = asyncio.ensure_future(pipe.run())
    try:
        for i, pause in enumerate(feed):
            await asyncio.sleep(pause)
            source.put(T0 + i * 1000)
        for _ in range(2000):
            if len(source.acks) >= total or task.done():
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_acknowledged_after_its_commit_and_within_the_bound() -> None:
    with station() as (pipe, source, _metrics):
        # one message, a quiet spell longer than the bound plus tolerance, then three more
        asyncio.run(_run(pipe, source, [0.0, QUIET_S, 0.01, 0.01], 4))
    assert len(source.acks) == 4
    for m, acked_at, stored in source.acks:
        assert stored, f"message {m.mid} acknowledged before its reading was stored"
        assert acked_at - m.received_ms <= WAIT_S * 1000 + TOLERANCE_MS, (
            f"message {m.mid} acknowledged {acked_at - m.received_ms} ms after it arrived"
        )


def test_a_trickle_commits_several_messages_at_once() -> None:
    with station() as (pipe, source, metrics):
        asyncio.run(_run(pipe, source, [0.0, 0.005, 0.005, 0.005, 0.005], 5))
        batches = metrics.batches._value.get()
    assert [stored for _, _, stored in source.acks] == [True] * 5
    assert batches < 5  # without grouping each message would be a commit of its own
