"""Handheld recorders: patrol records over MQTT and from a serial/USB dock.

MQTT: `stations/<station>/<device>/patrol`, QoS 1, through a paho client of its own
(`<broker.client_id>-handheld`); acknowledged after the records are stored. Dock: the
line protocol of drivers/handheld.py, answered `OK <n>` after the commit. Every record is
kept (flagged where it does not match the checklists); a record with `hazard` opens a
hazard ticket directly, with the inspector as the actor, once per record id.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from drivers.handheld import codec as handheld
from drivers.host import BatchBuilder, DriverContext, once
from drivers.link.framing import Reject, Stream
from drivers.link.mqtt_client import Message, MqttSource
from drivers.link.serial_line import LineLost, SerialLine
from gateway.config.transports import HandheldTransport, SerialPort
from gateway.core.model import Level
from gateway.storage.store import Store
from gateway.tickets.patrols import flags, store_record

log = logging.getLogger("stationgw.handheld")


class HandheldDriver:
    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.devices = {d.id for d in cfg.devices if isinstance(d.transport, HandheldTransport)}
        self.topic = f"stations/{cfg.station.id}/+/patrol"
        broker = cfg.broker.model_copy(
            update={"client_id": f"{cfg.broker.client_id}-handheld"[:64]}
        )
        self._broker, self._capacity, self._runs = broker, cfg.pipeline.queue_max, 0
        self.source = MqttSource(broker, [self.topic], capacity=cfg.pipeline.queue_max)
        self.once = once("handheld")
        self.stored = 0
        self.duplicates = 0
        self.hazards = 0
        self.lines: dict[str, SerialLine] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def store(self, device: str, records: list[handheld.Record], received: int) -> int:
        """The records and their hazard tickets, in one transaction."""
        if not records:
            return 0
        cfg = self.ctx.config
        checked = [(r, flags(cfg, r)) for r in records]

        def tx(store: Store) -> list[tuple[bool, int | None, bool]]:
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
                    if new_ticket and self.ctx.adopt is not None:
                        self.ctx.adopt(ticket, received)
                new = store_record(store, device, r, found, ticket, received)
                out.append((new, ticket, new_ticket))
            return out

        results: list[tuple[bool, int | None, bool]] = await self._write(tx)
        for (r, found), (new, ticket, new_ticket) in zip(checked, results, strict=True):
            if new:
                self.stored += 1
                if found:
                    self.once.warning(
                        f"flags:{device}:{found[0]}",
                        "%s: patrol record %s kept, flagged: %s",
                        device,
                        r.id,
                        "; ".join(found),
                    )
            else:
                self.duplicates += 1
            if new_ticket and ticket is not None:
                self.hazards += 1
                self._announce(ticket)
        return len(records)

    async def _write(self, fn: Any) -> Any:
        if self.ctx.write is None:
            raise RuntimeError("handheld records need the store writer")
        return await self.ctx.write(fn)

    def _announce(self, ticket_id: int) -> None:
        async def later() -> None:
            t = await self._write(lambda s: s.ticket(ticket_id))
            if t is not None:
                self.ctx.announce(t)

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- MQTT -------------------------------------------------------------------------

    def _decode(self, b: BatchBuilder, msg: Message) -> tuple[str, list[handheld.Record]] | None:
        parts = msg.topic.split("/")
        device = parts[2] if len(parts) == 4 else ""
        source = f"mqtt {msg.topic}"
        if device not in self.devices:
            b.quarantine(
                source,
                "unknown_device",
                f"handheld {device!r} is not configured (transport kind handheld)",
                msg.payload,
            )
            return None
        try:
            records = handheld.decode(msg.payload)
        except handheld.HandheldError as e:
            self.ctx.health.count(device, "malformed", b.now)
            b.quarantine(source, "malformed", f"{device}: patrol record: {e.reason}", msg.payload)
            return None
        b.seen(device)
        return device, records

    async def run(self) -> None:
        if self._runs:  # restarted after a crash: a stopped client does not start again
            self.source = MqttSource(self._broker, [self.topic], capacity=self._capacity)
        self._runs += 1
        await self.source.start()
        try:
            while True:
                msgs = await self.source.batch(self.ctx.config.pipeline.batch_max)
                b = BatchBuilder(self.ctx, "handheld", self.once)
                by_device: dict[str, list[handheld.Record]] = {}
                for msg in msgs:
                    got = self._decode(b, msg)
                    if got is not None:
                        by_device.setdefault(got[0], []).extend(got[1])
                if not b.empty:
                    await self.ctx.submit(b.batch)
                for device, records in by_device.items():
                    await self.store(device, records, b.now)
                self.ctx.metrics.acks.inc(self.source.ack(msgs))
        finally:
            await self.source.stop()

    # --- the dock ---------------------------------------------------------------------

    async def run_dock(self, port: SerialPort, device: str) -> None:
        """Records from a dock; `device` is the handheld docked there."""
        line = self.lines[port.id] = SerialLine(port)
        source = f"handheld dock {port.id}"
        stream: Stream[handheld.Record | handheld.End] = Stream(handheld.take)
        pending: list[handheld.Record] = []
        b = BatchBuilder(self.ctx, "handheld", self.once)
        try:
            while True:
                await line.open()
                try:
                    while True:
                        for item in stream.feed(await line.read()):
                            if isinstance(item, Reject):
                                self.ctx.health.count(device, "malformed", b.now)
                                b.quarantine(
                                    source, item.kind, f"{device}: {item.describe()}", item.raw
                                )
                            elif isinstance(item, handheld.End):
                                b.seen(device)
                                await self.ctx.submit(b.batch)
                                n = await self.store(device, pending, b.now)
                                pending = []
                                b = BatchBuilder(self.ctx, "handheld", self.once)
                                await line.write(f"OK {n}\n".encode())
                            else:
                                pending.append(item)
                except LineLost as e:
                    log.warning(
                        "%s: %s; reopening (%d records of an unfinished batch dropped "
                        "— the dock sends them again)",
                        source,
                        e,
                        len(pending),
                    )
                    line.close()
                    pending = []
                    partial = stream.flush("serial line lost")
                    if partial is not None:
                        b.quarantine(
                            source, partial.kind, f"{device}: {partial.describe()}", partial.raw
                        )
        finally:
            line.close()
