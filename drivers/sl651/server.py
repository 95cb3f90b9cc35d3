"""SL 651 stations over TCP (stations connect as clients) and over serial lines.

Bytes go through the pure codec (drivers/sl651.py); whole frames of configured stations
become readings, everything else goes to quarantine with the reason and byte offset. The
confirmation frame is sent only after the batch holding the frame's readings is committed.
One connection or line never holds up another: each has its own task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from zoneinfo import ZoneInfo

from drivers.host import BatchBuilder, DeviceRef, FieldSetup, Host, once
from drivers.link.config import SerialPort
from drivers.link.frame_io import Handle, pump_connection, pump_line
from drivers.link.framing import Reject, Stream
from drivers.link.serial_line import SerialLine
from drivers.sl651 import commands
from drivers.sl651.codec import (
    Frame,
    Reassembler,
    Sl651Error,
    confirmation,
    restamp,
    station_of,
    take,
)
from drivers.sl651.config import Sl651Section, Sl651Transport

log = logging.getLogger("stationgw.sl651")
SANE_CLOCK_MS = 1_767_225_600_000  # 2026-01-01 UTC: a gateway clock before this is not trusted


class Sl651Driver:
    def __init__(self, host: Host, section: Sl651Section) -> None:
        self.host = host
        self.section = section
        self.tz = ZoneInfo(section.timezone)
        self.reply_functions = {int(f, 16) for f in section.reply_functions}
        self.by_address: dict[str, tuple[DeviceRef, Sl651Transport]] = {
            d.transport.address.upper(): (d, d.transport)
            for d in host.devices
            if isinstance(d.transport, Sl651Transport)
        }
        self.once = once("sl651")
        self.frames = 0
        self.replies = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.streams: dict[str, Stream[Frame]] = {}  # per connection or line, for inspection
        self.lines: dict[str, SerialLine] = {}
        self.server: asyncio.Server | None = None

    def close_connections(self) -> None:
        for w in list(self._writers):
            w.close()

    def _stream(self) -> Stream[Frame]:
        return Stream(functools.partial(take, tz=self.tz))

    # --- turning codec output into a committed batch --------------------------------

    async def handle(
        self,
        items: list[Frame | Reject],
        source: str,
        reassembler: Reassembler,
        flush: bool = False,
    ) -> list[bytes]:
        """Commit what the items carry; return the confirmation frames to send now."""
        b = BatchBuilder(self.host, "sl651", self.once)
        replies: list[bytes] = []
        reported: dict[str, Frame] = {}  # device -> its last whole uplink frame
        answers: list[tuple[str, str, str]] = []  # device, command, answer
        drifting: list[tuple[str, int]] = []  # device, clock lead (ms)
        pictures: list[tuple[str, int, bytes]] = []  # device, observation time, JPEG
        for item in items:
            if isinstance(item, Reject):
                self._reject(b, item, source)
                continue
            h = item.header
            known = self.by_address.get(h.station)
            if known is None:
                b.quarantine(
                    source,
                    "unknown_station",
                    f"SL651 station {h.station} is not configured (function {h.function:02X})",
                    item.raw,
                )
                continue
            device, transport = known
            if h.downlink:
                b.quarantine(
                    source, "malformed", f"{device.id}: a downlink frame from a station", item.raw
                )
                self.host.count(device.id, "malformed", b.now)
                continue
            if transport.password is not None and h.password != transport.password.upper():
                b.quarantine(
                    source, "password", f"{device.id}: wrong password {h.password}", item.raw
                )
                continue
            try:
                whole = reassembler.add(item)
            except Sl651Error as e:
                self.host.count(device.id, "malformed", b.now)
                b.quarantine(source, "malformed", f"{device.id}: {e}", item.raw)
                continue
            self.host.counter("messages", "sl651")
            self.frames += 1
            b.seen(device.id)
            packet_replies: list[bytes] = []
            if h.packet is not None and transport.reply:
                # M3 (table 23): NAK for a missing packet, EOT once the message is whole
                packet_replies = reassembler.replies(item, whole, self.host.clock())
                if whole is None:
                    replies.extend(packet_replies)
            if whole is None:
                continue  # more packets to come
            whole = restamp(whole, transport.array_time)
            if whole.picture is not None:
                if not whole.picture.startswith(b"\xff\xd8"):
                    self.host.count(device.id, "malformed", b.now)
                    b.quarantine(
                        source,
                        "malformed",
                        f"{device.id}: picture (function 36) data does not start with the "
                        f"JPEG marker FF D8 (byte 0 of its {len(whole.picture)} bytes)",
                        whole.raw,
                    )
                else:
                    obs = whole.observed_at or whole.sent_at or b.now
                    pictures.append((device.id, obs, whole.picture))
            self._readings(b, device, transport, whole)
            reported[device.id] = whole
            drift = self._drift(whole)
            if drift is not None:
                drifting.append((device.id, drift))
            name = commands.NAME_BY_FUNCTION.get(h.function)
            if name is not None:
                answers.append((device.id, name, commands.answer_text(whole)))
            for variant in whole.variants:
                b.variant(device.id, variant)
            if transport.reply and h.packet is not None:
                replies.extend(packet_replies)
            elif transport.reply and h.function in self.reply_functions:
                replies.append(confirmation(whole, self.host.clock(), self.tz))
        for left in reassembler.incomplete(flush=flush):
            self._incomplete(b, left, source)
        if not b.empty:
            await self.host.submit(b.batch)
        for device_id, observed_at, jpeg in pictures:  # kept before the station is answered
            if await self.host.store_picture(device_id, observed_at, jpeg):
                log.info("%s: picture of %d bytes kept", device_id, len(jpeg))
        for device_id, name, answer in answers:
            await self.host.command_answered(device_id, name, answer)
        for device_id, lead in drifting:
            why = f"遥测站时钟偏差 {lead / 1000:+.0f} 秒 (clock off by {lead / 1000:+.0f} s)"
            if await self.host.queue_command(device_id, "clock.set", why):
                log.warning(
                    "%s: SL651 clock off by %+.0f s: clock.set queued", device_id, lead / 1000
                )
        for device_id, frame in reported.items():
            replies.extend(await self._commands(device_id, frame))
        return replies

    def _drift(self, frame: Frame) -> int | None:
        """The station clock's lead over the gateway's, when beyond the limit and the
        gateway's own clock is sane (not before the year this code was written)."""
        limit = self.section.clock_limit_s * 1000
        now = self.host.clock()
        if not limit or frame.sent_at is None or now < SANE_CLOCK_MS:
            return None
        if frame.header.function in (0x4A, 0x51):
            return None  # the answers about the clock itself
        lead = frame.sent_at - now
        return lead if abs(lead) > limit else None

    async def _commands(self, device_id: str, frame: Frame) -> list[bytes]:
        """Queued commands go out after the device's report was committed (it is awake)."""
        out = []
        h = frame.header
        for command_id, name, args in await self.host.commands_due(device_id):
            try:
                raw = commands.frame(
                    name,
                    args,
                    centre=h.centre,
                    station=h.station,
                    password=h.password,
                    now_ms=self.host.clock(),
                    tz=self.tz,
                )
            except commands.CommandError as e:
                await self.host.command_failed(command_id, str(e))
                continue
            await self.host.command_sent(command_id)
            out.append(raw)
        return out

    def _incomplete(self, b: BatchBuilder, f: Frame, source: str) -> None:
        """A multi-packet message that never became whole: kept in quarantine, flagged."""
        known = self.by_address.get(f.header.station)
        who = f"{known[0].id}: " if known else f"SL651 station {f.header.station}: "
        if known is not None:
            self.host.count(known[0].id, "malformed", b.now)
        note = f.notes[0] if f.notes else "incomplete multi-packet message"
        b.quarantine(source, "incomplete", f"{who}{note} (function {f.header.function:02X})", f.raw)

    def _reject(self, b: BatchBuilder, r: Reject, source: str) -> None:
        station = r.station or station_of(r.raw)
        known = self.by_address.get(station) if station else None
        if known is not None:
            self.host.count(known[0].id, "crc_errors" if r.kind == "crc" else "malformed", b.now)
        who = f"{known[0].id}: " if known else ""
        b.quarantine(source, r.kind, f"{who}{r.describe()}", r.raw)

    def _readings(self, b: BatchBuilder, device: DeviceRef, t: Sl651Transport, f: Frame) -> None:
        values: list[tuple[str, int, float]] = []
        for e in f.elements:
            if e.name == "VT" and e.value is not None:
                self.host.note(device.id, b.now, supply_v=e.value)
            metric = t.elements.get(e.name) or t.elements.get(e.code)
            if metric is None:
                self.once.warning(
                    f"unmapped:{device.id}:{e.name}",
                    "%s: SL651 element %s is not mapped to a metric (transport.elements); "
                    "not stored",
                    device.id,
                    e.name,
                )
                continue
            if e.value is not None:
                values.append((metric, e.ts, e.value))
        if f.header.function == 0x45 and f.text:
            self.host.note(device.id, b.now, firmware=f.text)
        b.readings(device.id, values)

    # --- TCP ------------------------------------------------------------------------

    async def serve(self) -> asyncio.Server:
        listen = self.section.listen
        assert listen is not None
        server = self.server = await asyncio.start_server(self._client, listen.host, listen.port)
        log.info("SL651 listening on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = f"sl651 tcp {peer[0]}:{peer[1]}" if peer else "sl651 tcp"
        self.connections += 1
        self._writers.add(writer)
        stream = self.streams[source] = self._stream()
        reassembler = Reassembler(self.tz)
        try:
            await pump_connection(
                reader,
                writer,
                stream,
                self._handler(source, reassembler),
                source=source,
                frame_timeout_s=self.section.frame_timeout_s,
                idle_timeout_s=self.section.idle_timeout_s,
            )
        finally:
            self._writers.discard(writer)
            self.streams.pop(source, None)
            if reassembler.pending():  # the connection ended inside a multi-packet message
                await self.handle([], source, reassembler, flush=True)

    def _handler(self, source: str, reassembler: Reassembler) -> Handle:
        """What one connection or line does with what it read; counts the replies."""

        async def handle(items: list[Frame | Reject]) -> list[bytes]:
            replies = await self.handle(items, source, reassembler)
            self.replies += len(replies)
            return replies

        return handle

    # --- serial -----------------------------------------------------------------------

    async def run_serial(self, port: SerialPort) -> None:
        """Read frames from a serial line for ever, reopening it when it goes away."""
        line = self.lines[port.id] = SerialLine(port)
        source = f"sl651 serial {port.id}"
        stream = self.streams[source] = self._stream()
        await pump_line(
            line,
            stream,
            self._handler(source, Reassembler(self.tz)),
            source=source,
            frame_timeout_s=self.section.frame_timeout_s,
        )


async def start(host: Host, setup: FieldSetup) -> Sl651Driver:
    """The `[sl651]` listener (if configured) and one reader per SL 651 serial port."""
    section = setup.section if isinstance(setup.section, Sl651Section) else Sl651Section()
    driver = Sl651Driver(host, section)
    await setup.serve_and_read("sl651", driver)
    return driver
