"""Drives the deliveries outbox: each channel has its own worker and bounded queue, so a
slow or failing channel never holds up another one or the pipeline. Every attempt's
result is stored (sent; pending with the next try after a backoff; failed after the
last attempt), so failures are visible in the API and nothing is lost on a restart —
a delivery in flight when the gateway stops is sent again (at least once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

from prometheus_client import CollectorRegistry, Counter

from gateway.core import clock
from gateway.core.errors import GatewayError, StoreError, TicketError
from gateway.events import Hub
from gateway.notify.base import AckIn, Channel, Delivery, DeliveryError
from gateway.notify.mqtt_link import MqttLink
from gateway.tickets.desk import Desk
from gateway.tickets.records import DeliveryRow
from gateway.tickets.store import Ticket

log = logging.getLogger("stationgw.notify")


def wall_ms() -> int:
    return clock.now_ms()


class Dispatcher:
    def __init__(
        self,
        desk: Desk,
        writer: Executor,
        channels: Mapping[str, Channel],
        hub: Hub,
        *,
        max_attempts: int = 6,
        send_timeout_s: float = 60.0,
        queue_max: int = 100,
        clock: Callable[[], int] = wall_ms,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.desk = desk
        self.writer = writer
        self.channels = dict(channels)
        self.hub = hub
        self.max_attempts = max_attempts
        self.send_timeout_s = send_timeout_s
        self.clock = clock
        self.queue_max = queue_max
        self.link: MqttLink | None = None
        self.queues: dict[str, asyncio.Queue[DeliveryRow]] = {
            name: asyncio.Queue(queue_max) for name in self.channels
        }
        self.in_flight: set[int] = set()
        self.last_error: dict[str, str | None] = dict.fromkeys(self.channels)
        reg = registry or CollectorRegistry()
        self.attempts = Counter(
            "stationgw_delivery_attempts",
            "Delivery attempts per channel and result (sent, retry, failed)",
            ["channel", "result"],
            registry=reg,
        )
        self.outcomes = Counter(
            "stationgw_attempt_outcomes",
            "Attempts per channel and outcome (voice: confirmed, answered, busy, no_answer, "
            "failed, stopped; others: sent, failed)",
            ["channel", "outcome"],
            registry=reg,
        )
        self.registry = reg
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._acks: set[asyncio.Task[Ticket | None]] = set()

    def add_channels(self, channels: Mapping[str, Channel], link: MqttLink | None) -> None:
        """Channels built after the dispatcher (they need its `on_ack`); before start."""
        self.channels.update(channels)
        self.link = link
        for name in channels:
            self.queues[name] = asyncio.Queue(self.queue_max)
            self.last_error[name] = None

    def status(self) -> dict[str, object]:
        """Per channel: deliveries queued, the last error and, for the channels that send
        over the station broker, whether that connection is up."""
        out: dict[str, object] = {}
        for name, ch in self.channels.items():
            s: dict[str, object] = {
                "queued": self.queues[name].qsize(),
                "last_error": self.last_error[name],
            }
            link = getattr(ch, "link", None)
            if isinstance(link, MqttLink):
                s["connected"] = link.connected
            more = getattr(ch, "status", None)
            if callable(more):
                s.update(more())
            out[name] = s
        return out

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.link is not None:
            await self.link.start()
        for ch in self.channels.values():
            await ch.start()
        for name in self.channels:
            self._tasks.append(asyncio.create_task(self._worker(name), name=f"notify-{name}"))
        self._tasks.append(asyncio.create_task(self._pump(), name="notify-pump"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for ch in self.channels.values():
            with contextlib.suppress(GatewayError, OSError):
                await ch.stop()
        if self.link is not None:
            await self.link.stop()

    async def _pump(self, interval_s: float = 0.5) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_s)
            self._wake.clear()
            try:
                due = await loop.run_in_executor(
                    self.writer, self.desk.due_deliveries, self.clock(), set(self.in_flight)
                )
            except (sqlite3.Error, StoreError) as e:
                log.error("deliveries could not be read (%s); retrying", e)
                continue
            for d in due:
                q = self.queues.get(d.channel)
                if q is None:
                    self.in_flight.add(d.id)
                    await self._record(d, f"channel {d.channel} not configured")
                    continue
                try:
                    q.put_nowait(d)
                except asyncio.QueueFull:
                    continue  # stays pending in the store; picked up again later
                self.in_flight.add(d.id)

    async def _worker(self, name: str) -> None:
        """One delivery at a time; a channel that batches itself (`concurrent`, the group
        robots: one queue and rate limit per robot) gets each delivery as its own task."""
        ch = self.channels[name]
        q = self.queues[name]
        running: set[asyncio.Task[None]] = set()
        while True:
            row = await q.get()
            if getattr(ch, "concurrent", False):
                task = asyncio.create_task(self._attempt(name, ch, row))
                running.add(task)
                task.add_done_callback(running.discard)
            else:
                await self._attempt(name, ch, row)

    async def _attempt(self, name: str, ch: Channel, row: DeliveryRow) -> None:
        d = Delivery(row.id, row.ticket_id, row.channel, row.target, row.body)
        error: str | None = None
        outcome: str | None = None
        timeout = float(getattr(ch, "timeout_s", self.send_timeout_s))
        started = self.clock()
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that arrives as the send finishes, and the worker would not stop
            async with asyncio.timeout(timeout):
                outcome = await ch.send(d)
        except DeliveryError as e:
            error, outcome = str(e), e.outcome
        except TimeoutError:
            error = f"no result within {timeout} s"
        except Exception as e:  # a channel bug must not stop its worker
            log.exception("channel %s failed on delivery %d", name, d.id)
            error = f"{type(e).__name__}: {e}"
        self.last_error[name] = error
        await self._record(row, error, outcome, started)

    async def _record(
        self,
        row: DeliveryRow,
        error: str | None,
        outcome: str | None = None,
        started: int | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.outcomes.labels(row.channel, outcome or ("sent" if error is None else "failed")).inc()

        def write() -> DeliveryRow | None:
            return self.desk.delivered(
                row.id,
                error,
                self.clock(),
                self.max_attempts,
                outcome=outcome,
                started_at=started,
            )

        try:
            done = await loop.run_in_executor(self.writer, write)
        except (sqlite3.Error, StoreError) as e:
            log.error("delivery %d result not stored (%s); it will be sent again", row.id, e)
            done = None
        finally:
            self.in_flight.discard(row.id)
        result = "sent" if error is None else (done.status if done else "retry")
        self.attempts.labels(row.channel, "retry" if result == "pending" else result).inc()
        if error is not None and outcome is None:  # a call's outcome is logged by its channel
            log.warning("%s delivery %d to %s: %s", row.channel, row.id, row.target, error)
        if done is not None:
            self.hub.publish("delivery", done.to_json())

    # --- acknowledgements coming back through a channel --------------------------------

    def on_ack(self, ack: AckIn) -> None:
        task = asyncio.get_running_loop().create_task(self.acknowledge(ack))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def acknowledge(self, ack: AckIn) -> Ticket | None:
        loop = asyncio.get_running_loop()

        def write() -> Ticket | None:
            tid = ack.ticket
            if tid is None and ack.code is not None:
                tk = self.desk.ticket_by_code(ack.code)
                tid = tk.id if tk else None
            if tid is None:
                log.warning(
                    "acknowledgement by %s via %s: no open ticket %s", ack.by, ack.via, ack.code
                )
                return None
            return self.desk.acknowledge(tid, ack.by, ack.via, ack.note, self.clock())

        try:
            ticket = await loop.run_in_executor(self.writer, write)
        except TicketError as e:
            log.info("acknowledgement by %s via %s not taken: %s", ack.by, ack.via, e)
            ticket = None
        except (sqlite3.Error, StoreError) as e:  # not stored: the channel may send it again
            log.error("acknowledgement by %s via %s not stored: %s", ack.by, ack.via, e)
            return None
        if ack.done is not None:
            ack.done()
        if ticket is not None:
            log.info(
                "ticket %d acknowledged by %s via %s", ticket.id, ticket.acknowledged_by, ack.via
            )
            self.hub.publish("ticket", ticket.to_json(self.clock()))
        return ticket
