"""The uplinks to the county, run beside the gateway: each configured link drains the
outbox from its own cursor; a housekeeper deletes what every link confirmed and keeps the
outbox inside its disk budget."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol

from gateway.config.station import Config
from gateway.storage.store import Store
from gateway.uplinks import outbox
from gateway.uplinks.feed import Feed
from gateway.uplinks.influx import InfluxLink, make_writer
from gateway.uplinks.line_protocol import LineEncoder, Place
from gateway.uplinks.mqtt import MqttLink
from gateway.uplinks.nats import NatsLink
from gateway.uplinks.plans import Apply

log = logging.getLogger("stationgw.uplink")


class Link(Protocol):
    name: str
    connected: bool

    async def run(self, feed: Feed) -> None: ...

    def status(self) -> dict[str, object]: ...


def encoder_for(cfg: Config, station: str, *, events: bool = True) -> LineEncoder:
    villages = {p.id: p.village for p in cfg.points}
    places = {d.id: Place(d.point, villages.get(d.point)) for d in cfg.devices}
    return LineEncoder(station, places, villages, events=events)


def build_links(cfg: Config) -> list[Link]:
    up = cfg.uplinks
    links: list[Link] = []
    if up.influx is not None:
        enc = encoder_for(cfg, up.influx.station or cfg.station.id, events=up.influx.events)
        links.append(InfluxLink(up.influx, enc, make_writer(up.influx)))
    if up.mqtt is not None:
        links.append(MqttLink(up.mqtt, cfg.station.id))
    if up.nats is not None:
        links.append(NatsLink(up.nats, cfg))
    return links


class Uplinks:
    def __init__(
        self,
        cfg: Config,
        db_path: Path,
        writer: Executor,
        writer_store: Store,
        clock: Callable[[], int],
        *,
        links: list[Link] | None = None,
        housekeeping_s: float = 2.0,
    ) -> None:
        self.max_bytes = round(cfg.uplinks.outbox.max_mb * 1024 * 1024)
        self.writer = writer
        self.store = writer_store
        self.clock = clock
        self.links = build_links(cfg) if links is None else links
        self.feeds = {
            link.name: Feed(link.name, db_path, writer, writer_store) for link in self.links
        }
        self.housekeeping_s = housekeeping_s
        self._tasks: list[asyncio.Task[None]] = []
        self._status: outbox.Status | None = None

    async def _on_writer(self, fn: Callable[[Store], Any]) -> Any:
        store = self.store

        def tx() -> Any:
            with store.transaction():
                return fn(store)

        return await asyncio.get_running_loop().run_in_executor(self.writer, tx)

    def plans(self, apply: Apply, running: Callable[[], dict[str, object]]) -> None:
        """The county's rule plans, through the links that carry them (nats)."""
        for link in self.links:
            if isinstance(link, NatsLink):
                link.plans(apply, running)

    async def start(self) -> None:
        names = [link.name for link in self.links]
        await self._on_writer(lambda s: outbox.configure(s.conn, names))
        await self.housekeep()
        for link in self.links:
            self._tasks.append(asyncio.create_task(self._run(link), name=f"uplink-{link.name}"))
        if self.links:
            self._tasks.append(asyncio.create_task(self._housekeeper(), name="outbox"))

    async def _run(self, link: Link) -> None:
        try:
            await link.run(self.feeds[link.name])
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a link must not take the gateway down: log, restart
            log.exception("uplink %s failed; restarting it in 5 s", link.name)
            await asyncio.sleep(5)
            self._tasks.append(asyncio.create_task(self._run(link), name=f"uplink-{link.name}"))

    def nudge(self) -> None:
        for feed in self.feeds.values():
            feed.nudge()

    async def housekeep(self) -> None:
        """Delete confirmed rows (in chunks, so ingest never waits long), then enforce
        the budget and refresh the status the API shows."""
        pruned = 1
        while pruned:  # one chunk per writer turn: ingest commits go in between
            pruned = await self._on_writer(lambda s: outbox.prune(s.conn))
        now = self.clock()
        await self._on_writer(lambda s: outbox.enforce_budget(s.conn, self.max_bytes, now))
        self._status = await self._on_writer(lambda s: outbox.status(s.conn))

    async def _housekeeper(self) -> None:
        while True:
            await asyncio.sleep(self.housekeeping_s)
            try:
                await self.housekeep()
            except Exception:
                log.exception("outbox housekeeping failed; trying again")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for feed in self.feeds.values():
            feed.close()

    def status(self, store: Store) -> dict[str, object]:
        """Per uplink: connected, last confirmed seq, backlog and dropped count (read now
        through `store`, a reader); the outbox's rows and size from the last housekeeping
        pass (counting them is too dear for every request)."""
        newest = outbox.newest(store.conn)
        cursors = {c.name: c for c in outbox.cursors(store.conn)}
        st = self._status
        out: dict[str, object] = {
            "outbox": {
                "newest_seq": newest,
                "rows": st.rows if st else None,
                "est_bytes": st.est_bytes if st else None,
                "budget_bytes": self.max_bytes,
            }
        }
        links: dict[str, object] = {}
        for link in self.links:
            c = cursors.get(link.name)
            confirmed = max(c.confirmed if c else 0, self.feeds[link.name].confirmed)
            links[link.name] = {
                **link.status(),
                "confirmed_seq": confirmed,
                "backlog": max(0, newest - confirmed),
                "dropped": c.dropped if c else 0,
                "dropped_at": c.dropped_at if c else None,
            }
        out["uplinks"] = links
        return out
