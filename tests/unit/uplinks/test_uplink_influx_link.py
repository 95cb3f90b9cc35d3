"""The InfluxDB link with a fake writer: retries with growing backoff while the server
is away, goes on after a refused batch, confirms in order."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.config.uplinks import InfluxUplinkSection
from gateway.core.model import Reading
from gateway.tickets.store import StationStore
from gateway.uplinks import outbox
from gateway.uplinks.feed import Feed
from gateway.uplinks.influx import InfluxLink, Rejected, Retry
from gateway.uplinks.line_protocol import LineEncoder

T0 = 1_780_000_000_000


class FakeWriter:
    """Answers from a script: 'down' raises Retry, 'bad' Rejected, 'ok' takes the body."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.bodies: list[bytes] = []
        self.calls = 0
        self.closed = False

    def write(self, body: bytes) -> None:
        answer = self.script[self.calls] if self.calls < len(self.script) else "ok"
        self.calls += 1
        if answer == "down":
            raise Retry("connection refused")
        if answer == "bad":
            raise Rejected("influx answered 400: bad point")
        self.bodies.append(body)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def test_retries_with_backoff_then_goes_on_after_a_refused_batch(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = StationStore(db)
    with store.transaction():
        outbox.configure(store.conn, ["influx"])
        outbox.add_readings(
            store.conn, [Reading("rg-01", "rain_mm", T0 + i, float(i)) for i in range(10)]
        )
    store.close()
    cfg = InfluxUplinkSection(mode="v1", database="d", batch_size=4)
    writer = FakeWriter(["down", "down", "down", "bad"])
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    link = InfluxLink(cfg, LineEncoder("st", {}, {}), writer, sleep=sleep, max_backoff_s=0.5)

    async def run() -> int:
        pool = ThreadPoolExecutor(1)
        wstore = pool.submit(StationStore, db).result()
        feed = Feed("influx", db, pool, wstore)
        task = asyncio.create_task(link.run(feed))
        for _ in range(3000):  # at most 30 s: only a hung test waits that long
            if feed.confirmed >= 10:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        feed.close()
        cursor = pool.submit(outbox.cursor, wstore.conn, "influx").result()
        pool.submit(wstore.close).result()
        pool.shutdown()
        return cursor

    assert asyncio.run(run()) == 10
    assert slept == [0.2, 0.4, 0.5]  # doubling, capped
    assert writer.calls == 6 and link.rejected == 1  # 3 refused connections, 1 bad, 2 ok
    lines = b"\n".join(writer.bodies).decode().splitlines()
    assert [ln.rsplit(" ", 1)[1] for ln in lines] == [str(T0 + i) for i in range(4, 10)]
    assert link.connected and writer.closed
