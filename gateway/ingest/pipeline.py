"""From broker messages to committed batches: decode, commit, acknowledge, announce.

One loop: take whatever the MQTT buffer holds (up to batch_max), decode it, commit it on
the writer thread, acknowledge it, publish the changes. While a batch commits, the next
one gathers, so batches grow with load; at a trickle the source's gathered read
(`drivers.link.mqtt_client.GATHER_S`) gives each commit several messages. A batch the
store refuses (disk full, I/O error) is retried with backoff and never acknowledged
meanwhile: senders are slowed, nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor

from drivers.link.mqtt_client import Message, MqttSource
from drivers.mqtt_json.codec import Report, Topic, decode_status, decode_telemetry, parse_topic
from gateway.core import clock as gateway_clock
from gateway.core.batch import Batch, Quarantined
from gateway.core.errors import BatchError, PayloadError, StoreError
from gateway.core.logs import Once
from gateway.events import Hub
from gateway.ingest import dead_letter, untimed
from gateway.ingest.commit import Ingestor, Outcome
from gateway.ingest.dead_letter import DeadLetters
from gateway.ingest.registry import Registry
from gateway.metrics import Metrics

log = logging.getLogger("stationgw.pipeline")

_TOPIC_CACHE_MAX = 100_000  # bounded: a flood of made-up topics cannot grow it forever
_REASON_MAX = 500  # characters of a quarantine reason
# A batch this large commits at once; a smaller one waits up to `commit_wait_s` for more.
# Measured at 1,000 readings/s (CPU) and 1,900/s (alert p50 / p99), 2 runs each: 1 (no
# grouping) 15.9, 15.4% / 10-12 / 18-26 ms; 16: 11.1, 14.9% / 10-11 / 18-20 ms; 32: 12.6,
# 10.6% / 20-22 / 35-37 ms; 64: 9.4, 10.2% / 27-30 / 50-55 ms (BENCHMARKS.md).
GROUP_MIN = 32


def safe(text: str, limit: int = 120) -> str:
    """A device-chosen string for a reason or a log line: quoted, cut, escaped."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def wall_ms() -> int:
    return gateway_clock.now_ms()  # wall time at start, advanced monotonically (core/clock.py)


def _store_refused(e: Exception) -> bool:
    """The store could not take a batch now (disk full, I/O, locked): retry. Any other
    error (an integer SQLite cannot hold, a constraint, a bug) is the batch's own."""
    if isinstance(e, (StoreError, OSError, sqlite3.OperationalError)):
        return True
    return type(e) is sqlite3.DatabaseError  # a damaged file, not a bad value


class Pipeline:
    def __init__(
        self,
        source: MqttSource,
        ingestor: Ingestor,
        writer: Executor,
        registry: Registry,
        hub: Hub,
        metrics: Metrics,
        *,
        batch_max: int,
        clock: Callable[[], int] = wall_ms,
        commit_wait_s: float = 0.0,
        commit_delay_s: float = 0.0,
        crash_after_commits: int = 0,
        dead_letters: DeadLetters | None = None,
        crash_on: bytes = b"",
    ) -> None:
        self.source = source
        self.ingestor = ingestor
        self.writer = writer
        self.registry = registry
        self.hub = hub
        self.metrics = metrics
        self.batch_max = batch_max
        self.clock = clock
        self.commit_wait_s = commit_wait_s  # group commit: the longest a reading waits
        self.commit_delay_s = commit_delay_s  # test hook: widens the arrival→commit window
        # test hook: die (as kill -9 would) after this many commits of readings, before
        # their acks
        self.crash_after_commits = crash_after_commits
        self.dead_letters = dead_letters
        if dead_letters is not None:
            dead_letters.start()
        # test hook: die (os._exit, as a segfault would) on a message whose body holds this
        self.crash_on = crash_on
        self.store_error: str | None = None
        # called after a commit that changed tickets (the notification outbox wakes up)
        self.on_tickets: Callable[[], None] | None = None
        self._once = Once(log)
        self.skews: dict[str, int] = {}  # device -> its clock's lead (ms), when far off
        self._current: asyncio.Future[None] | None = None
        self._topics: dict[str, Topic] = {}  # topic string -> parsed (devices are few)
        self._untimed_last: dict[str, int] = {}  # device -> last ms given to an untimed report
        self._telemetry_counter = metrics.messages.labels("telemetry")
        self._status_counter = metrics.messages.labels("status")

    async def run(self) -> None:
        while True:
            messages = await self.source.batch(self.batch_max)
            if self.commit_wait_s > 0 and len(messages) < min(GROUP_MIN, self.batch_max):
                messages += await self._group(messages)
            self._current = asyncio.ensure_future(self._handle(messages))
            await asyncio.shield(self._current)

    async def _group(self, messages: list[Message]) -> list[Message]:
        """Group commit at low rates: a small batch waits for more until its oldest
        message has waited `commit_wait_s` since it arrived, or GROUP_MIN messages are in
        hand. Fewer, larger commits write fewer pages to flash per reading; the bound
        holds each acknowledgement to `commit_wait_s` after arrival plus the commit."""
        waited = (gateway_clock.now_ms() - messages[0].received_ms) / 1000
        left = self.commit_wait_s - waited
        if left <= 0:
            return []
        return await self.source.more(min(GROUP_MIN, self.batch_max) - len(messages), left)

    async def drain(self) -> None:
        """Let the batch in hand finish committing and acknowledging (on shutdown)."""
        if self._current is not None and not self._current.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._current), 10)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("shutdown: the last batch did not finish; it will be redelivered")

    def build(self, messages: list[Message]) -> Batch:
        """Decode messages into one batch; what cannot be decoded goes to quarantine."""
        batch = Batch()
        m = self.metrics
        readings = batch.readings
        telemetry = status = 0
        for msg in messages:
            marks = (len(readings), len(batch.untimed), len(batch.quarantined))
            try:
                telemetry, status = self._one(batch, msg, telemetry, status)
            except Exception as e:
                del readings[marks[0] :], batch.untimed[marks[1] :], batch.quarantined[marks[2] :]
                log.exception("message on %s could not be decoded", safe(msg.topic))
                self._quarantine(
                    batch,
                    msg,
                    "internal",
                    f"{type(e).__name__} while decoding (topic {safe(msg.topic)}): {e}",
                )
        # counters once per batch, not once per message (each inc takes a lock)
        if telemetry:
            self._telemetry_counter.inc(telemetry)
        if status:
            self._status_counter.inc(status)
        m.readings_in.inc(len(readings))
        return batch

    def _one(self, batch: Batch, msg: Message, telemetry: int, status: int) -> tuple[int, int]:
        """Decode one message into the batch; return the telemetry and status counts."""
        registry = self.registry
        topics = self._topics
        topic = topics.get(msg.topic)
        if topic is None:
            topic = parse_topic(msg.topic)
            if topic is not None and len(topics) < _TOPIC_CACHE_MAX:
                topics[msg.topic] = topic
        if topic is not None and topic.device.startswith("_"):
            return telemetry, status  # the gateway's own availability message
        if topic is None or topic.station != registry.station:
            self._quarantine(batch, msg, "topic", f"unexpected topic {safe(msg.topic)}")
            return telemetry, status
        device = topic.device
        if msg.oversized:
            self._quarantine(
                batch, msg, "too_large", f"{msg.oversized} bytes from {device}: over the limit"
            )
            return telemetry, status
        if not registry.knows(device):
            self._quarantine(
                batch, msg, "unknown_device", f"unknown device {device!r} (not configured)"
            )
            return telemetry, status
        try:
            if topic.kind == "status":
                batch.statuses[device] = (decode_status(msg.payload), msg.received_ms)
                return telemetry, status + 1
            if msg.retain:
                # a retained report replayed at (re)subscription: already taken when it was
                # published (the subscription persists), or older than the gateway's session
                self.metrics.retained_ignored.inc()
                self._once.warning(
                    f"retained:{device}",
                    "device %s publishes telemetry retained: the broker replays it at every "
                    "subscription; not taken as a new reading (publish with retain=false)",
                    device,
                )
                return telemetry, status
            reports = decode_telemetry(msg.payload, msg.received_ms)
        except PayloadError as e:
            self._quarantine(batch, msg, "payload", f"bad payload from {device}: {e}")
            return telemetry, status
        if not reports[0].timed or not reports[-1].timed:
            reports = self._untimed(batch, device, reports)
        lead = gateway_clock.skew(reports[-1].ts, msg.received_ms)
        if lead is not None or device in self.skews:
            self._note_skew(device, lead)
        mapped = registry.map(device, reports)
        numbered = [(r.seq, r.ts) for r in reports if r.seq is not None]
        batch.readings.extend(mapped.readings)
        batch.seen[device] = (msg.received_ms, max((n[0] for n in numbered), default=None))
        if numbered:
            batch.seqs.setdefault(device, []).extend(numbered)
        if mapped.unknown_metrics:
            names = ", ".join(mapped.unknown_metrics)
            self._quarantine(
                batch, msg, "unknown_metric", f"{device}: metrics not configured: {names}"
            )
        for r in mapped.out_of_range:
            self.metrics.out_of_range.inc()
            self._once.warning(
                f"range:{device}:{r.metric}",
                "%s %s = %s is outside the sensor's physical range; stored flagged, "
                "not judged by hazard rules",
                device,
                r.metric,
                r.value,
            )
        return telemetry + 1, status

    def _untimed(self, batch: Batch, device: str, reports: list[Report]) -> list[Report]:
        """Reports without `ts`: each gets a millisecond of its own for this device (never
        two collapsed into one by the store's key), and those with a `seq` go to the
        commit, which recognises a redelivery by (device, seq, values)."""
        out: list[Report] = []
        last = self._untimed_last.get(device, 0)
        unkeyed = 0
        for r in reports:
            if r.timed:
                out.append(r)
                continue
            last = max(r.ts, last + 1)
            out.append(Report(last, r.seq, r.values, False))
            if r.seq is None:
                unkeyed += len(r.values)
                batch.untimed.append((device, None, 0, last))
            else:
                batch.untimed.append((device, r.seq, untimed.values_digest(r.values), last))
        self._untimed_last[device] = last
        if unkeyed:
            self.metrics.unkeyed.inc(unkeyed)
        return out

    def _note_skew(self, device: str, lead: int | None) -> None:
        if lead is None:
            del self.skews[device]
            log.info(
                "device %s: clock back within %d s of the gateway's",
                device,
                gateway_clock.SKEW_MS // 1000,
            )
            return
        if device not in self.skews:
            log.warning(
                "device %s: clock %s the gateway's by %.0f s (readings keep the device's "
                "timestamps; check the device's or the gateway's clock)",
                device,
                "ahead of" if lead > 0 else "behind",
                abs(lead) / 1000,
            )
        self.skews[device] = lead

    def _quarantine(self, batch: Batch, msg: Message, kind: str, reason: str) -> None:
        reason = reason[:_REASON_MAX]  # never a whole large input echoed
        batch.quarantined.append(Quarantined(msg.received_ms, msg.topic, reason, msg.payload))
        self.metrics.quarantined.labels(kind).inc()
        self._once.warning(f"{kind}:{msg.topic}", "quarantined (topic %s): %s", msg.topic, reason)

    async def _handle(self, messages: list[Message]) -> None:
        dl = self.dead_letters
        if dl is None:
            await self._process(messages, [])
            return
        digests = [dead_letter.digest(m.topic, m.payload) for m in messages]
        if not dl.crashes:
            await self._process(messages, digests)
            return
        # the last runs died with some of these in flight: each suspect goes alone, in
        # arrival order, so the next death names it; at the limit it is set aside
        run: list[Message] = []
        run_digests: list[str] = []
        for msg, d in zip(messages, digests, strict=True):
            deaths = dl.count(d)
            if not deaths:
                run.append(msg)
                run_digests.append(d)
                continue
            if run:
                await self._process(run, run_digests)
                run, run_digests = [], []
            if deaths >= dl.max_crashes:
                batch = Batch()
                self._quarantine(
                    batch,
                    msg,
                    "dead_letter",
                    f"dead letter: the gateway stopped {deaths} times while this message "
                    "was being processed; set aside unprocessed",
                )
                await self.submit(batch)
                self.metrics.acks.inc(self.source.ack([msg]))
                dl.done([d])
            else:
                await self._process([msg], [d])
        if run:
            await self._process(run, run_digests)

    async def _process(self, messages: list[Message], digests: list[str]) -> None:
        """Decode, commit, acknowledge; the dead-letter marker is held meanwhile."""
        if self.dead_letters is not None:
            self.dead_letters.begin(digests)
        if self.crash_on and any(self.crash_on in m.payload for m in messages):
            log.critical("test hook: dying on a chosen message, as a segfault would")
            os._exit(71)
        batch = self.build(messages)
        if self.commit_delay_s:
            await asyncio.sleep(self.commit_delay_s)
        try:
            await self.submit(batch)
        except BatchError as e:
            await self._one_by_one(messages, e)
        if self.crash_after_commits and batch.readings:
            self.crash_after_commits -= 1
            if not self.crash_after_commits:
                log.critical("test hook: dying between the commit and the acknowledgement")
                os._exit(70)
        self.metrics.acks.inc(self.source.ack(messages))
        if self.dead_letters is not None:
            self.dead_letters.done(digests)

    async def _one_by_one(self, messages: list[Message], error: BatchError) -> None:
        """A batch failed on its contents: commit its messages alone; the one that
        fails again is quarantined with the reason, its neighbours are stored."""
        log.warning("a batch of %d message(s) failed (%s); one by one", len(messages), error)
        for msg in messages:
            try:
                if len(messages) > 1:
                    await self.submit(self.build([msg]))
                    continue
                raise error
            except BatchError as e:
                batch = Batch()
                cause = e.__cause__ or e
                self._quarantine(
                    batch,
                    msg,
                    "internal",
                    f"{type(cause).__name__} while storing or judging (topic "
                    f"{safe(msg.topic)}): {cause}",
                )
                await self.submit(batch)

    async def submit(self, batch: Batch) -> Outcome:
        """Commit a batch durably (retrying while the store refuses), then announce it.

        Every driver hands its batches here and answers its device (an MQTT ack, a
        protocol's confirmation frame) only after this returns: acknowledged means stored.
        Raises BatchError when the batch itself cannot be committed (nothing was stored).
        """
        outcome = await self._commit(batch)
        try:
            self.announce(outcome)
        except Exception:
            log.exception("announcing a committed batch failed")
        return outcome

    async def _commit(self, batch: Batch) -> Outcome:
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            try:
                commit = functools.partial(
                    self.ingestor.commit, device_states=self.hub.subscribers() > 0
                )
                outcome = await loop.run_in_executor(self.writer, commit, batch, self.clock())
            except Exception as e:
                if not _store_refused(e):  # the batch's own fault: retrying cannot help
                    raise BatchError(f"{type(e).__name__}: {str(e)[:200]}") from e
                self.store_error = str(e)
                self.metrics.commit_failures.inc()
                log.error(
                    "store refused a batch of %d readings (%s); not acknowledging, retry in %.1fs",
                    len(batch.readings),
                    e,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self.store_error is not None:
                log.warning("store accepts batches again")
                self.store_error = None
            return outcome

    def announce(self, outcome: Outcome) -> None:
        if outcome.tickets and self.on_tickets is not None:
            self.on_tickets()
        m = self.metrics
        m.batches.inc()
        m.readings_stored.inc(len(outcome.new))
        m.duplicates.inc(outcome.duplicates)
        listening = self.hub.subscribers() > 0  # build event payloads only for listeners
        if outcome.new and listening:
            latest: dict[tuple[str, str], tuple[int, float]] = {}
            for r in outcome.new:
                key = (r.device, r.metric)
                if key not in latest or r.ts >= latest[key][0]:
                    latest[key] = (r.ts, r.value)
            self.hub.publish(
                "readings",
                [
                    {"device": d, "metric": mt, "ts": t, "value": v}
                    for (d, mt), (t, v) in latest.items()
                ],
            )
        for t in outcome.transitions:
            where = f"{t.device}/{t.metric}" if t.device else f"@{t.point}"
            if t.kind == "fault":
                change = "fault on" if t.active else "fault off"
            else:
                before = t.previous.label if t.previous else "none"
                change = f"{before} -> {t.level.label if t.level else 'none'}"
            log.info("%s %s %s: %s", t.rule, where, change, t.reason_en)
        for ticket in outcome.tickets:
            m.ticket_changes.inc()
            if listening:
                self.hub.publish("ticket", ticket.to_json())
        if listening:
            for device in outcome.devices:
                self.hub.publish("device", device.to_json())
