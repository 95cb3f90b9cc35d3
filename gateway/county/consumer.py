"""The county's consumer: one durable JetStream pull consumer, shared by every instance of
`stationgw county`, writing what the stations send into PostgreSQL.

Each fetch (up to `batch` messages) is checked message by message (`accept`: subject,
known station, size, then pydantic on the bytes, errors naming the key path) and written
in one transaction, the refused messages into `quarantine` with their reason. Only after
that commit are the messages acked: an acked message is in PostgreSQL. While PostgreSQL
is down the consumer keeps the fetched messages, tells JetStream they are in progress and
tries again; another instance takes over what a dead one had fetched after `ack_wait`.

A message that makes the write fail for what it holds (a value PostgreSQL refuses) is
retried alone; on its `max_deliver`-th delivery it is dead-lettered into `quarantine`
with the error, so no poison message blocks the stream. Nothing here stops the loop:
connection losses wait and retry, everything else is counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

import nats
import nats.errors
import nats.js.errors
import psycopg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.core.validation import problems
from gateway.county.config import CountyConfig, NatsSection
from gateway.county.plans import apply_plan_report
from gateway.county.store import Batch, Conn, CountyStore, Refused, Written, month_of

log = logging.getLogger("stationgw.county.consumer")

MAX_MESSAGE_BYTES = 512 * 1024  # a station's largest message (10,000 readings) is ~600 KiB
ACK_WAIT_S = 10  # a dead instance's messages go to another after this
MIN_TS_MS = 946_684_800_000  # 2000-01-01: readings outside [2000, 2100) are refused
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01
DUPLICATE_WINDOW_S = 120  # the contract's minimum; (station, seq) keys do the rest

StationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Seq = Annotated[int, Field(ge=1, le=2**62)]
Ms = Annotated[int, Field(ge=0, le=2**53)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


class _Outboxed(_Strict):
    station: StationId
    seq: Seq
    last: Seq


Reading = tuple[
    Annotated[str, Field(min_length=1, max_length=128)],
    Annotated[str, Field(min_length=1, max_length=128)],
    Annotated[int, Field(ge=MIN_TS_MS, lt=MAX_TS_MS)],
    float | None,
    Annotated[int, Field(ge=-(2**31), lt=2**31)],
]


class ReadingsMessage(_Outboxed):
    readings: list[Reading] = Field(min_length=1, max_length=20_000)

    @model_validator(mode="after")
    def _seqs(self) -> ReadingsMessage:
        if self.last != self.seq + len(self.readings) - 1:
            raise ValueError(f"last: {self.last} is not seq + {len(self.readings)} - 1")
        return self


class TicketBody(_Open):
    id: Annotated[int, Field(ge=0, le=2**62)]
    kind: str
    state: str
    level: Literal["blue", "yellow", "orange", "red"] | None = None
    opened_at: Ms | None = None
    updated_at: Ms | None = None
    value: float | None = None


class EventBody(_Open):
    id: Annotated[int, Field(ge=0, le=2**62)]
    at: Ms
    kind: str
    level: Literal["blue", "yellow", "orange", "red"] | None = None
    value: float | None = None


class TicketMessage(_Outboxed):
    ticket: TicketBody
    event: EventBody


class HealthBody(_Open):
    device: Annotated[str, Field(min_length=1, max_length=128)]
    online: bool | None = None
    at: Ms | None = None


class HealthMessage(_Outboxed):
    health: HealthBody


class PlanStatus(_Open):
    version: str | None = None
    hash: str | None = None
    errors: list[Any] = []


class Clock(_Open):
    sane: bool
    ms: Ms


class StateMessage(_Open):
    station: StationId
    at: Ms
    name: str | None = None
    tz: str | None = None
    version: str | None = None
    lon: float | None = None
    lat: float | None = None
    villages: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    people: list[dict[str, Any]] = []
    plan: PlanStatus = PlanStatus()
    disk_free_mb: float | None = None
    backlog: Annotated[int, Field(ge=0)] | None = None
    clock: Clock


class PlanMessage(_Open):
    station: StationId
    at: Ms
    version: str | None = None
    hash: str | None = None
    ok: bool
    errors: list[Any] = []


MODELS: dict[str, type[BaseModel]] = {
    "readings": ReadingsMessage,
    "tickets": TicketMessage,
    "health": HealthMessage,
    "state": StateMessage,
    "plan": PlanMessage,
}


def explain(e: ValidationError, most: int = 5) -> str:
    """A pydantic error as `key.path[3]: message; …` (the first `most`)."""
    found = problems(e)
    more = len(found) - most
    return "; ".join(found[:most]) + (f"; and {more} more" if more > 0 else "")


def accept(
    batch: Batch,
    subject: str,
    data: bytes,
    known: set[str] | frozenset[str],
    received_ms: int,
    deliveries: int = 1,
) -> bool:
    """Check one message and add it to `batch`, as data or as refused; True if data."""
    tokens = subject.split(".")
    station = tokens[1] if len(tokens) == 3 and tokens[0] == "county" else None

    def refuse(reason: str) -> bool:
        batch.refused.append(Refused(subject, station, reason, deliveries, data))
        return False

    if station is None:
        return refuse(f"subject {subject!r}: not county.<station>.<kind>")
    if len(data) > MAX_MESSAGE_BYTES:
        return refuse(f"oversized: {len(data)} bytes, more than {MAX_MESSAGE_BYTES}")
    if station not in known:
        return refuse(f"station {station!r} is not one of county.toml's [[stations]]")
    kind = tokens[2]
    model = MODELS.get(kind)
    if model is None:
        return refuse(f"subject {subject!r}: no kind {kind!r} (readings, tickets, …)")
    try:
        m = model.model_validate_json(data)
    except ValidationError as e:
        return refuse(explain(e))
    if getattr(m, "station", None) != station:
        return refuse(f"station: {getattr(m, 'station', None)!r} on subject {subject!r}")
    batch.see(station, received_ms)
    if isinstance(m, ReadingsMessage):
        batch.readings += [
            (station, m.seq + i, d, metric, ts, v, f)
            for i, (d, metric, ts, v, f) in enumerate(m.readings)
        ]
    elif isinstance(m, TicketMessage):
        batch.tickets.append((station, m.seq, m.ticket.model_dump(), m.event.model_dump()))
    elif isinstance(m, HealthMessage):
        batch.health.append((station, m.seq, m.health.model_dump()))
    elif isinstance(m, StateMessage):
        batch.states.append((station, m.model_dump(), received_ms))
    elif isinstance(m, PlanMessage):
        batch.plans.append((station, m.model_dump()))
    return True


async def _quiet(e: Exception) -> None:
    """nats-py's own error callback logs every reconnect try with a traceback."""
    log.debug("nats: %s: %s", type(e).__name__, e)


def connect_options(cfg: NatsSection, name: str) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "error_cb": _quiet,
        "servers": list(cfg.servers),
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
    }
    if cfg.user is not None:
        opts["user"], opts["password"] = cfg.user, cfg.password
    if cfg.creds_file is not None:
        opts["user_credentials"] = str(cfg.creds_file)
    if cfg.ca_file is not None:
        import ssl

        opts["tls"] = ssl.create_default_context(cafile=str(cfg.ca_file))
    return opts


async def ensure_stream(js: JetStreamContext, name: str, replicas: int = 3) -> int:
    """The county stream (subjects county.>), made if missing; return its replicas. A
    single server (no cluster) gets one replica."""
    with contextlib.suppress(nats.js.errors.NotFoundError):  # missing: made below
        info = await js.stream_info(name)
        return int(info.config.num_replicas or 1)
    for r in (replicas, 1):
        try:
            await js.add_stream(
                StreamConfig(
                    name=name,
                    subjects=["county.>"],
                    num_replicas=r,
                    storage=StorageType.FILE,
                    duplicate_window=DUPLICATE_WINDOW_S,
                    max_msg_size=MAX_MESSAGE_BYTES * 2,
                )
            )
            return r
        except nats.js.errors.BadRequestError as e:
            if r == 1 or ("replicas" not in str(e).lower() and e.err_code != 10074):
                raise
    return 1


class Consumer:
    def __init__(
        self,
        cfg: CountyConfig,
        store: CountyStore,
        *,
        batch: int = 500,
        name: str = "county",
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.batch = batch
        self.name = name
        self.known = frozenset(s.id for s in cfg.stations)
        self.counters: dict[str, int] = {
            "received": 0,
            "readings_stored": 0,
            "duplicates_skipped": 0,
            "quarantined": 0,
            "dead_lettered": 0,
            "acked": 0,
            "postgres_waits": 0,
            "redelivered": 0,
        }
        self.nats_connected = False
        self.postgres_ok = False

        self.last_error: str | None = None
        self.last_batch_at: float | None = None
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="county-pg")
        self._conn: Conn | None = None
        self._nc: NatsClient | None = None

    def _plan_report(self, conn: Conn, body: dict[str, Any]) -> str | None:
        return apply_plan_report(conn, self.cfg, body)

    def status(self) -> dict[str, object]:
        return {
            "instance": self.name,
            "nats_connected": self.nats_connected,
            "postgres_ok": self.postgres_ok,
            "last_error": self.last_error,
            **self.counters,
        }

    # -- PostgreSQL (on its own thread) ---------------------------------------------------

    def _write_sync(self, batch: Batch) -> Written:
        if self._conn is None or self._conn.closed:
            self._conn = self.store.connect()
        try:
            return self.store.write(self._conn, batch, self._plan_report)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            raise

    def _setup_sync(self) -> None:
        conn = self.store.connect()
        try:
            self.store.sync_stations(conn, self.cfg.stations)
            self.store.ensure_partitions(conn, [month_of(time.time_ns() // 1_000_000)])
        finally:
            conn.close()

    async def _db_call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def _write(self, batch: Batch, msgs: list[Msg]) -> Written:
        """Write until PostgreSQL took it; meanwhile the messages stay ours."""
        delay, told = 0.5, time.monotonic()
        while True:
            try:
                written: Written = await self._db_call(self._write_sync, batch)
                if not self.postgres_ok:
                    log.info("PostgreSQL reachable; writing")
                self.postgres_ok = True
                return written
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                if self.postgres_ok:
                    log.warning("PostgreSQL unreachable (%s); holding %d messages", e, len(msgs))
                self.postgres_ok = False
                self.last_error = f"PostgreSQL: {e}".strip()
                self.counters["postgres_waits"] += 1
                if time.monotonic() - told > ACK_WAIT_S / 3:
                    told = time.monotonic()
                    for m in msgs:
                        with contextlib.suppress(Exception):
                            await m.in_progress()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        n = self.cfg.nats
        while True:
            try:
                await self._db_call(self._setup_sync)
                self.postgres_ok = True
                break
            except psycopg.Error as e:
                self.last_error = f"PostgreSQL: {e}"
                log.warning("PostgreSQL not ready (%s); again in 2 s", e)
                await asyncio.sleep(2)
        while True:
            try:
                self._nc = await nats.connect(**connect_options(n, f"county-{self.name}"))
                js = self._nc.jetstream(timeout=10)
                await ensure_stream(js, n.stream)
                sub = await js.pull_subscribe(
                    "county.>",
                    durable=n.consumer,
                    stream=n.stream,
                    config=ConsumerConfig(
                        ack_policy=AckPolicy.EXPLICIT,
                        ack_wait=ACK_WAIT_S,
                        max_deliver=n.max_deliver,
                        max_ack_pending=20_000,
                        num_replicas=0,
                    ),
                )
                break
            except (OSError, nats.errors.Error, TimeoutError) as e:
                self.last_error = f"NATS {', '.join(n.servers)}: {type(e).__name__}: {e}"
                log.warning("county cluster not ready (%s); again in 1 s", self.last_error)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(1)
        self.nats_connected = True
        log.info("consumer %s on stream %s: fetching", n.consumer, n.stream)
        try:
            while True:
                try:
                    msgs = await sub.fetch(self.batch, timeout=1)
                except (nats.errors.TimeoutError, TimeoutError):
                    self.nats_connected = self._nc.is_connected
                    continue
                except (nats.errors.Error, OSError) as e:
                    self.nats_connected = False
                    self.last_error = f"fetch: {type(e).__name__}: {e}"
                    await asyncio.sleep(0.5)
                    continue
                self.nats_connected = True
                try:
                    await self.handle(msgs)
                except Exception:  # never stop the consumer: count, log, go on
                    log.exception("batch of %d messages failed; they come again", len(msgs))
                    self.last_error = "batch failed (see the log)"
        finally:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._db.submit(self._close_sync).result()
            self._db.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def handle(self, msgs: list[Msg]) -> None:
        batch = Batch()
        for m in msgs:
            md = m.metadata
            deliveries = md.num_delivered or 1
            if deliveries > 1:
                self.counters["redelivered"] += 1
            received_ms = int(md.timestamp.timestamp() * 1000) if md.timestamp else 0
            accept(batch, m.subject, m.data, self.known, received_ms, deliveries)
        self.counters["received"] += len(msgs)
        try:
            written = await self._write(batch, msgs)
        except psycopg.Error as e:  # what a message holds: find it, write the rest
            log.warning("batch refused by PostgreSQL (%s); writing its messages one by one", e)
            await self._one_by_one(msgs)
            return
        self._count(written)
        await self._ack(msgs)

    async def _one_by_one(self, msgs: list[Msg]) -> None:
        max_deliver = self.cfg.nats.max_deliver
        for m in msgs:
            md = m.metadata
            deliveries = md.num_delivered or 1
            received_ms = int(md.timestamp.timestamp() * 1000) if md.timestamp else 0
            one = Batch()
            accept(one, m.subject, m.data, self.known, received_ms, deliveries)
            try:
                written = await self._write(one, [m])
            except psycopg.Error as e:
                if deliveries < max_deliver:
                    with contextlib.suppress(Exception):
                        await m.nak(delay=1)
                    continue
                station = m.subject.split(".")[1] if m.subject.count(".") == 2 else None
                why = f"dead-lettered after {deliveries} deliveries: {type(e).__name__}: {e}"
                dead = Batch(refused=[Refused(m.subject, station, why[:2000], deliveries, m.data)])
                written = await self._write(dead, [m])
                self.counters["dead_lettered"] += 1
                log.error("message on %s dead-lettered: %s", m.subject, why)
            self._count(written)
            await self._ack([m])

    def _count(self, w: Written) -> None:
        self.counters["readings_stored"] += w.readings
        self.counters["duplicates_skipped"] += w.duplicates
        self.counters["quarantined"] += w.refused
        self.last_batch_at = time.time()

    async def _ack(self, msgs: list[Msg]) -> None:
        for m in msgs:
            try:
                await m.ack()
                self.counters["acked"] += 1
            except (nats.errors.Error, OSError) as e:  # it comes again; stored once
                self.last_error = f"ack: {e}"
