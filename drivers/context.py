"""What a field driver is handed by the gateway: config, registry, the commit, health."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from drivers.mqtt_json import Report
from gateway.config import Config
from gateway.events import Hub
from gateway.health import HealthRecorder
from gateway.ingest import Batch, Outcome, Quarantined
from gateway.logs import Once
from gateway.metrics import Metrics
from gateway.model import FLAG_INSTRUMENT, Level
from gateway.registry import Registry
from gateway.store import Store, Ticket

Write = Callable[[Callable[[Store], Any]], Awaitable[Any]]


@dataclass
class DriverContext:
    config: Config
    registry: Registry
    submit: Callable[[Batch], Awaitable[Outcome]]  # returns after the durable commit
    health: HealthRecorder
    metrics: Metrics
    clock: Callable[[], int]  # gateway time, UTC ms
    write: Write | None = None  # run fn(store) in one transaction on the writer thread
    hub: Hub | None = None
    # a reported hazard joins the ticket loop (short code, stage deadline); called on the
    # writer thread inside the transaction that opened the ticket
    adopt: Callable[[int, int], None] | None = None

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
        """Store.open_hazard in its own transaction; announce a new ticket."""
        if self.write is None:
            raise RuntimeError("this driver context cannot write tickets")

        def tx(store: Store) -> tuple[int, bool, Ticket | None]:
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
        if new and ticket is not None and self.hub is not None:
            self.announce(ticket)
        return tid, new

    def announce(self, ticket: Ticket) -> None:
        if self.hub is not None:
            self.metrics.ticket_changes.inc()
            self.hub.publish("ticket", ticket.to_json())


class BatchBuilder:
    """Builds one batch for a driver; counts and logs (once per key) what it quarantines."""

    def __init__(self, ctx: DriverContext, protocol: str, once: Once) -> None:
        self.ctx = ctx
        self.protocol = protocol
        self.once = once
        self.batch = Batch()
        self.now = ctx.clock()

    def quarantine(self, source: str, kind: str, reason: str, payload: bytes) -> None:
        self.batch.quarantined.append(Quarantined(self.now, source, reason, payload))
        self.ctx.metrics.quarantined.labels(f"{self.protocol}_{kind}").inc()
        self.once.warning(f"{kind}:{source}", "quarantined (%s): %s", source, reason)

    def readings(
        self,
        device: str,
        values: Iterable[tuple[str, int, float]],
        abnormal: Collection[tuple[str, int]] = (),
    ) -> int:
        """(metric, ts, value) of a configured device; out-of-range values stored flagged,
        and so are the (metric, ts) the instrument itself marked `abnormal`."""
        reports = [Report(ts, None, ((metric, value),)) for metric, ts, value in values]
        mapped = self.ctx.registry.map(device, reports)
        if abnormal:
            mapped.readings[:] = [
                r._replace(flags=r.flags | FLAG_INSTRUMENT) if (r.metric, r.ts) in abnormal else r
                for r in mapped.readings
            ]
        self.batch.readings.extend(mapped.readings)
        self.ctx.metrics.readings_in.inc(len(mapped.readings))
        for r in mapped.out_of_range:
            self.ctx.metrics.out_of_range.inc()
            self.once.warning(
                f"range:{device}:{r.metric}",
                "%s %s = %s is outside the sensor's physical range; stored flagged",
                device,
                r.metric,
                r.value,
            )
        return len(mapped.readings)

    def seen(self, device: str, online: bool = True) -> None:
        self.batch.seen[device] = (self.now, None)
        if online:
            self.batch.statuses[device] = (True, self.now)

    @property
    def empty(self) -> bool:
        b = self.batch
        return not (b.readings or b.quarantined or b.statuses or b.seen)


def once(name: str) -> Once:
    return Once(logging.getLogger(f"stationgw.{name}"))
