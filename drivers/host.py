"""What a driver is handed by the gateway: the small interface the gateway implements.

Drivers see only this (and gateway.core's plain types): submit a batch and wait for its
durable commit, map decoded values to the station's metrics, count health, open a hazard,
store patrol records. The gateway's implementation is gateway/ingest/host.py; tests hand
a driver a fake with counters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from drivers.handheld.codec import Record
from drivers.link.broker import Broker
from drivers.link.config import SerialPort, TransportModel
from drivers.mqtt_json.codec import Report
from gateway.core.batch import Batch, Quarantined
from gateway.core.logs import Once
from gateway.core.model import FLAG_INSTRUMENT, Level, Reading

HealthCounter = Literal["crc_errors", "timeouts", "malformed", "variants"]
DriverCounter = Literal[
    "messages", "acks", "quarantined", "readings_in", "out_of_range", "dtu_events", "variants"
]


@dataclass(frozen=True, slots=True)
class Mapped:
    readings: list[Reading]
    unknown_metrics: list[str]
    out_of_range: list[Reading]


@dataclass(frozen=True, slots=True)
class PatrolOutcome:
    new: bool  # False: a redelivered record, stored once already
    flags: tuple[str, ...]  # what the record's checks found (unknown point, missing items …)
    ticket: int | None  # the hazard ticket the record opened or joined
    new_ticket: bool


class DeviceRef(Protocol):
    """A configured device as a driver sees it: its id and its transport table."""

    @property
    def id(self) -> str: ...
    @property
    def transport(self) -> TransportModel: ...


class Host(Protocol):
    station: str  # the station's id (MQTT topics)
    broker: Broker  # the station's MQTT broker
    batch_max: int  # readings per commit
    queue_max: int  # messages held in memory before the broker is slowed
    devices: Sequence[DeviceRef]

    def clock(self) -> int:
        """Gateway time, UTC ms."""
        ...

    async def submit(self, batch: Batch) -> object:
        """Returns after the batch is durably committed (then acknowledge the device)."""
        ...

    def map(self, device: str, reports: list[Report]) -> Mapped: ...
    def count(self, device: str, counter: HealthCounter, at: int, n: int = 1) -> None: ...
    def note(self, device: str, at: int, **values: float | str | None) -> None: ...
    def counter(
        self, name: DriverCounter, label: str | tuple[str, ...] | None = None, n: int = 1
    ) -> None: ...

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
        """Open (or join) a hazard ticket in its own transaction; announce a new one."""
        ...

    async def store_patrol(
        self, device: str, records: list[Record], received: int
    ) -> list[PatrolOutcome]:
        """Patrol records and their hazard tickets, in one transaction."""
        ...

    async def store_picture(self, device: str, observed_at: int, jpeg: bytes) -> bool:
        """Keep a picture the device sent (a file and its row); False if already kept."""
        ...

    async def commands_due(self, device: str) -> list[DueCommand]:
        """Commands queued for `device` to send now (after its report was committed)."""
        ...

    async def queue_command(self, device: str, name: str, why: str) -> bool:
        """The gateway's own command (clock keeping): queued unless one is open; audited."""
        ...

    async def command_sent(self, command_id: int) -> None: ...
    async def command_failed(self, command_id: int, why: str) -> None: ...
    async def command_answered(self, device: str, name: str, answer: str) -> None:
        """The device answered its oldest sent command called `name`."""
        ...


DueCommand = tuple[int, str, dict[str, str]]  # queue id, command name, its arguments
Spawn = Callable[..., None]  # spawn(name, coroutine function, *args): a supervised task
Listen = Callable[[str, Callable[[], Awaitable[asyncio.Server]]], Awaitable[asyncio.Server]]


@dataclass
class FieldSetup:
    """What field start-up hands a protocol's `start(host, setup)`."""

    devices: Sequence[DeviceRef]  # configured devices whose transport is this protocol
    section: object | None  # the protocol's station-file section ([sl651] …), if any
    serial_ports: list[SerialPort]  # every [[serial_ports]] entry; a driver takes its own
    spawn: Spawn
    listen: Listen
    servers: list[asyncio.Server] = field(default_factory=list)
    drivers: Mapping[str, object] = field(default_factory=dict)  # those started before it

    async def serve_and_read(self, protocol: str, driver: FramedDriver) -> None:
        """A framed protocol's TCP listener (when its section has `listen`) and one reader
        per serial port that speaks it."""
        if driver.section.listen is not None:
            self.servers.append(await self.listen(protocol.upper(), driver.serve))
        for port in self.serial_ports:
            if port.protocol == protocol:
                self.spawn(f"{protocol} serial {port.id}", driver.run_serial, port)


class _Listening(Protocol):
    @property
    def listen(self) -> object: ...


class FramedDriver(Protocol):
    """A driver of frames over TCP connections and serial lines (SL 651, GB/T 26875)."""

    @property
    def section(self) -> _Listening: ...
    async def serve(self) -> asyncio.Server: ...
    async def run_serial(self, port: SerialPort) -> None: ...


class BatchBuilder:
    """Builds one batch for a driver; counts and logs (once per key) what it quarantines."""

    def __init__(self, host: Host, protocol: str, once: Once) -> None:
        self.host = host
        self.protocol = protocol
        self.once = once
        self.batch = Batch()
        self.now = host.clock()

    def quarantine(self, source: str, kind: str, reason: str, payload: bytes) -> None:
        self.batch.quarantined.append(Quarantined(self.now, source, reason, payload))
        self.host.counter("quarantined", f"{self.protocol}_{kind}")
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
        mapped = self.host.map(device, reports)
        if abnormal:
            mapped.readings[:] = [
                r._replace(flags=r.flags | FLAG_INSTRUMENT) if (r.metric, r.ts) in abnormal else r
                for r in mapped.readings
            ]
        self.batch.readings.extend(mapped.readings)
        self.host.counter("readings_in", n=len(mapped.readings))
        for r in mapped.out_of_range:
            self.host.counter("out_of_range")
            self.once.warning(
                f"range:{device}:{r.metric}",
                "%s %s = %s is outside the sensor's physical range; stored flagged",
                device,
                r.metric,
                r.value,
            )
        return len(mapped.readings)

    def variant(self, device: str, variant: str) -> None:
        """A frame of `device` accepted with a departure from its standard (stored, flagged
        by this count): counted per device and variant in /metrics, per device on the
        Devices page (with the last one), and logged once per device and variant."""
        self.host.counter("variants", (device, variant.split(" (")[0]))
        self.host.count(device, "variants", self.now)
        self.host.note(device, self.now, last_variant=variant)
        self.once.warning(
            f"variant:{device}:{variant}",
            "%s: %s frame accepted with a departure from the standard: %s",
            device,
            self.protocol,
            variant,
        )

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
