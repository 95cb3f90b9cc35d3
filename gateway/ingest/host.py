"""The gateway's side of drivers/host.py: what every field driver is handed.

Readings go through the pipeline's commit; health notes to the recorder; hazards and
patrol records are written on the store's writer thread in one transaction each, joined
to the 叫应 loop (`adopt`) and announced on the page's event stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from drivers.handheld.codec import Record
from drivers.host import DeviceRef, DriverCounter, HealthCounter, Mapped, PatrolOutcome
from drivers.link.broker import Broker
from drivers.mqtt_json.codec import Report
from gateway.config.station import Config
from gateway.core.batch import Batch
from gateway.core.model import Level
from gateway.events import Hub
from gateway.ingest.health import HealthRecorder
from gateway.ingest.registry import Registry
from gateway.metrics import Metrics
from gateway.storage import commands, pictures
from gateway.tickets.patrols import flags, store_record
from gateway.tickets.store import StationStore, Ticket

Write = Callable[[Callable[[StationStore], Any]], Awaitable[Any]]


class GatewayHost:
    def __init__(
        self,
        config: Config,
        registry: Registry,
        submit: Callable[[Batch], Awaitable[object]],
        health: HealthRecorder,
        metrics: Metrics,
        clock: Callable[[], int],
        write: Write | None = None,
        hub: Hub | None = None,
        adopt: Callable[[int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.station = config.station.id
        self.broker: Broker = config.broker
        self.batch_max = config.pipeline.batch_max
        self.queue_max = config.pipeline.queue_max
        self.devices: Sequence[DeviceRef] = config.devices
        self.registry = registry
        self._submit = submit
        self.health = health
        self.metrics = metrics
        self._clock = clock
        self._write = write
        self.hub = hub
        self.adopt = adopt  # a reported hazard joins the ticket loop (id, at), on the writer
        self._tasks: set[asyncio.Task[None]] = set()

    def clock(self) -> int:
        return self._clock()

    async def submit(self, batch: Batch) -> object:
        return await self._submit(batch)

    def map(self, device: str, reports: list[Report]) -> Mapped:
        return self.registry.map(device, reports)

    def count(self, device: str, counter: HealthCounter, at: int, n: int = 1) -> None:
        self.health.count(device, counter, at, n)

    def note(self, device: str, at: int, **values: float | str | None) -> None:
        self.health.note(device, at, **values)

    def counter(
        self, name: DriverCounter, label: str | tuple[str, ...] | None = None, n: int = 1
    ) -> None:
        c = getattr(self.metrics, name)
        if isinstance(label, tuple):
            c = c.labels(*label)
        elif label is not None:
            c = c.labels(label)
        c.inc(n)

    async def write(self, fn: Callable[[StationStore], Any]) -> Any:
        if self._write is None:
            raise RuntimeError("this driver host cannot write to the store")
        return await self._write(fn)

    async def store_picture(self, device: str, observed_at: int, jpeg: bytes) -> bool:
        root = pictures.folder(self.config.database.path)
        now = self.clock()

        def tx(store: StationStore) -> tuple[pictures.Picture, bool]:
            return pictures.save(store, root, device, observed_at, now, jpeg)

        picture, new = await self.write(tx)
        if new and self.hub is not None:
            self.hub.publish("picture", picture.to_json())
        return bool(new)

    async def commands_due(self, device: str) -> list[tuple[int, str, dict[str, str]]]:
        if self._write is None:
            return []
        now = self.clock()
        due = await self.write(lambda store: commands.due(store, device, now))
        return [(c.id, c.name, c.args) for c in due]

    async def queue_command(self, device: str, name: str, why: str) -> bool:
        if self._write is None:
            return False
        now = self.clock()

        def tx(store: StationStore) -> bool:
            if commands.is_open(store, device, name):
                return False
            commands.enqueue(
                store,
                now,
                device=device,
                name=name,
                args={},
                user=None,
                ttl_ms=24 * 3_600_000,
                timeout_ms=120_000,
                max_attempts=3,
                source=f"gateway: {why}",
            )
            return True

        queued: bool = await self.write(tx)
        return queued

    async def command_sent(self, command_id: int) -> None:
        now = self.clock()
        await self.write(lambda store: commands.mark_sent(store, command_id, now))

    async def command_failed(self, command_id: int, why: str) -> None:
        now = self.clock()
        await self.write(lambda store: commands.failed(store, command_id, now, why))

    async def command_answered(self, device: str, name: str, answer: str) -> None:
        now = self.clock()
        done = await self.write(lambda store: commands.answered(store, device, name, now, answer))
        if done is not None and self.hub is not None:
            self.hub.publish(
                "command", {"id": done.id, "device": device, "state": done.state, "answer": answer}
            )

    async def open_hazard(
        self,
        *,
        level: Level,
        title: str,
        device: str | None,
        actor: str,
        at: int,
        ref: str,
        note: str | None = None,
    ) -> tuple[int, bool]:
        def tx(store: StationStore) -> tuple[int, bool, Ticket | None]:
            tid, new = store.open_hazard(
                level=level,
                title=title,
                device=device,
                metric=None,
                actor=actor,
                at=at,
                ref=ref,
                note=note,
            )
            if new and self.adopt is not None:
                self.adopt(tid, at)
            return tid, new, store.ticket(tid)

        tid, new, ticket = await self.write(tx)
        if new and ticket is not None:
            self.announce(ticket)
        return tid, new

    async def store_patrol(
        self, device: str, records: list[Record], received: int
    ) -> list[PatrolOutcome]:
        checked = [(r, tuple(flags(self.config, r))) for r in records]

        def tx(store: StationStore) -> list[PatrolOutcome]:
            out = []
            for r, found in checked:
                ticket, new_ticket = None, False
                if r.hazard is not None:
                    level, title = r.hazard
                    ticket, new_ticket = store.open_hazard(
                        level=Level.parse(level),
                        title=title,
                        device=device,
                        metric=None,
                        actor=r.by,
                        at=r.at,
                        ref=f"handheld:{device}:{r.id}",
                        note=r.text or f"patrol record {r.id} at {r.point or '?'}",
                    )
                    if new_ticket and self.adopt is not None:
                        self.adopt(ticket, received)
                new = store_record(store, device, r, list(found), ticket, received)
                out.append(PatrolOutcome(new, found, ticket, new_ticket))
            return out

        results: list[PatrolOutcome] = await self.write(tx)
        for o in results:
            if o.new_ticket and o.ticket is not None:
                self._announce_later(o.ticket)
        return results

    def announce(self, ticket: Ticket) -> None:
        if self.hub is not None:
            self.metrics.ticket_changes.inc()
            self.hub.publish("ticket", ticket.to_json())

    def _announce_later(self, ticket_id: int) -> None:
        async def later() -> None:
            t = await self.write(lambda s: s.ticket(ticket_id))
            if t is not None:
                self.announce(t)

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
