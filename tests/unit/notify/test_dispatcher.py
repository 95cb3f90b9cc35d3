"""The dispatcher: a hanging channel holds up no other; failures are retried with backoff
and reported failed after the last attempt; every result is stored."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.core.model import Level
from gateway.events import Hub
from gateway.notify.base import Delivery, DeliveryError
from gateway.notify.dispatcher import Dispatcher
from gateway.tickets.desk import Desk
from gateway.tickets.records import backoff_ms, read_deliveries
from gateway.tickets.store import StationStore
from tests.unit.tickets.loop_helpers import T0, station


class Fake:
    def __init__(self, name: str, fail: int = 0, hang: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.hang = hang
        self.sent: list[int] = []
        self.tries = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, d: Delivery) -> None:
        self.tries += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.fail > 0:
            self.fail -= 1
            raise DeliveryError(f"{self.name} down")
        self.sent.append(d.id)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_ms(n) for n in (1, 2, 3, 4)] == [1000, 2000, 4000, 8000]
    assert backoff_ms(30) == 300_000


def test_channels_do_not_block_each_other_and_failures_are_retried(tmp_path: Path) -> None:
    cfg = station(tmp_path)
    writer = ThreadPoolExecutor(1)
    store: StationStore = writer.submit(StationStore, cfg.database.path).result()
    desk = Desk(store, cfg)
    now = [T0]

    def setup() -> None:
        tk = desk.report(
            title="t",
            point="slope",
            level=Level.RED,
            by="x",
            role=None,
            note=None,
            attachments=(),
            now=T0,
        )
        with store.transaction():
            for ch in ("slow", "fast", "flaky", "down", "nowhere"):
                desk._deliver(tk, None, ch, "target", {"text": "测试"}, T0)

    writer.submit(setup).result()
    slow, fast, flaky, down = (
        Fake("slow", hang=True),
        Fake("fast"),
        Fake("flaky", fail=2),
        Fake("down", fail=99),
    )

    async def main() -> dict[str, tuple[str, int, str | None]]:
        hub = Hub()
        d = Dispatcher(
            desk,
            writer,
            {c.name: c for c in (slow, fast, flaky, down)},
            hub,
            max_attempts=3,
            send_timeout_s=0.2,
            clock=lambda: now[0],
        )
        await d.start()
        try:
            deadline = time.monotonic() + 20
            while True:
                rows = {
                    r.channel: (r.status, r.attempts, r.last_error)
                    for r in writer.submit(read_deliveries, store).result()
                }
                if all(s != "pending" for s, _, _ in rows.values()):
                    return rows
                assert time.monotonic() < deadline, rows
                now[0] += 1000  # time passes: retries come due
                await asyncio.sleep(0.05)
        finally:
            await d.stop()

    rows = asyncio.run(main())
    assert rows["fast"] == ("sent", 1, None)
    assert rows["flaky"] == ("sent", 3, None)
    assert rows["down"] == ("failed", 3, "down down")
    assert rows["slow"] == ("failed", 3, "no result within 0.2 s")
    assert rows["nowhere"] == ("failed", 3, "channel nowhere not configured")
    assert fast.sent and flaky.tries == 3 and slow.tries == 3
    stored = writer.submit(read_deliveries, store).result()
    assert all(json.dumps(r.body, ensure_ascii=False) == '{"text": "测试"}' for r in stored)
    writer.submit(store.close).result()
    writer.shutdown()
