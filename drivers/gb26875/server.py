"""Fire-alarm panels (GB/T 26875.3 user information transmission) over TCP and serial.

The transmission device sends `send data` (2) frames with system states and component
statuses. A fire alarm opens a hazard ticket directly (red, the panel as the actor; the
alarm's own key makes a resent frame open none). The confirm (3) goes back only after the
ticket and the batch are committed. Queued commands (drivers/gb26875/commands.py) go out
after a frame of the device, numbered by the centre; the response (5), confirm (3) or
deny (6) carrying that number answers them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from zoneinfo import ZoneInfo

from drivers.gb26875 import codec as gb26875
from drivers.gb26875 import commands
from drivers.gb26875.config import Gb26875Section, Gb26875Transport
from drivers.host import BatchBuilder, DeviceRef, FieldSetup, Host, once
from drivers.link.config import SerialPort
from drivers.link.frame_io import Handle, pump_connection, pump_line
from drivers.link.framing import Reject, Stream
from drivers.link.serial_line import SerialLine
from gateway.core.model import Level

log = logging.getLogger("stationgw.gb26875")

Item = gb26875.Frame | Reject
PENDING_MAX = 1024  # commands sent and awaiting their answer, remembered at most


class Gb26875Driver:
    def __init__(self, host: Host, section: Gb26875Section) -> None:
        self.host = host
        self.section = section
        self.tz = ZoneInfo(section.timezone)
        self.by_address: dict[str, tuple[DeviceRef, Gb26875Transport]] = {
            d.transport.address.upper(): (d, d.transport)
            for d in host.devices
            if isinstance(d.transport, Gb26875Transport)
        }
        self.once = once("gb26875")
        self.frames = 0
        self.replies = 0
        self.alarms = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.lines: dict[str, SerialLine] = {}
        self.server: asyncio.Server | None = None
        self.serial = 0  # the centre's own frames (commands) are numbered here
        # (device, serial of our command) -> (queue id, command name), until answered
        self.pending: dict[tuple[str, int], tuple[int, str]] = {}

    def _stream(self) -> Stream[gb26875.Frame]:
        return Stream(functools.partial(gb26875.take, tz=self.tz))

    async def handle(self, items: list[Item], source: str) -> list[bytes]:
        b = BatchBuilder(self.host, "gb26875", self.once)
        replies: list[bytes] = []
        alarms: list[tuple[DeviceRef, gb26875.Status]] = []
        reported: dict[str, gb26875.Frame] = {}  # device -> its last frame
        outcomes: list[tuple[str, tuple[int, str], gb26875.Frame]] = []
        for item in items:
            if isinstance(item, Reject):
                addr = item.raw[12:18].hex().upper() if len(item.raw) >= 18 else None
                known = self.by_address.get(addr) if addr else None
                if known is not None:
                    self.host.count(
                        known[0].id, "crc_errors" if item.kind == "crc" else "malformed", b.now
                    )
                who = f"{known[0].id}: " if known else ""
                b.quarantine(source, item.kind, f"{who}{item.describe()}", item.raw)
                continue
            known = self.by_address.get(item.source)
            if known is None:
                b.quarantine(
                    source,
                    "unknown_device",
                    f"GB26875 source address {item.source} is not configured",
                    item.raw,
                )
                continue
            device, t = known
            self.frames += 1
            self.host.counter("messages", "gb26875")
            b.seen(device.id)
            reported[device.id] = item
            if item.command in (3, 5, 6):  # about a frame of ours: a command's answer?
                pending = self.pending.pop((device.id, item.serial), None)
                if pending is not None:
                    outcomes.append((device.id, pending, item))
                continue
            if item.command != 2:
                continue
            for s in item.statuses:
                if s.fire_alarm:
                    alarms.append((device, s))
                elif "fault" in s.flags:
                    self.once.warning(
                        f"fault:{device.id}:{s.name}",
                        "%s: %s reports %s",
                        device.id,
                        s.name,
                        ", ".join(s.flags),
                    )
            if t.reply:
                replies.append(gb26875.confirm(item, self.host.clock(), self.tz))
        if not b.empty:
            await self.host.submit(b.batch)
        for device_id, (command_id, name), answer in outcomes:
            if answer.command == 6:
                await self.host.command_failed(command_id, "设备否认 (deny, command 6)")
            else:
                await self.host.command_answered(device_id, name, commands.answer_text(answer))
        for device_id, frame in reported.items():  # it is connected: its queued commands
            replies.extend(await self._commands(device_id, frame))
        for device, s in alarms:
            what = s.description or s.name
            _, new = await self.host.open_hazard(
                level=Level.RED,
                title=f"火警 {what}",
                device=device.id,
                actor=f"panel:{device.id}",
                at=s.ts,
                ref=f"gb26875:{device.id}:{s.name}:{s.ts}",
                note=f"{s.name}: {', '.join(s.flags)}",
            )
            if new:
                self.alarms += 1
                log.warning("%s: fire alarm at %s — hazard ticket opened", device.id, what)
        return replies

    async def _commands(self, device_id: str, frame: gb26875.Frame) -> list[bytes]:
        """Queued commands go out after the device's frame was committed (it is there)."""
        out = []
        for command_id, name, args in await self.host.commands_due(device_id):
            now = self.host.clock()
            try:
                data = commands.application_data(name, args, now, self.tz)
            except commands.CommandError as e:
                await self.host.command_failed(command_id, str(e))
                continue
            self.serial = self.serial % 0xFFFF + 1
            self.pending[(device_id, self.serial)] = (command_id, name)
            while len(self.pending) > PENDING_MAX:  # never answered: the queue retries them
                del self.pending[next(iter(self.pending))]
            await self.host.command_sent(command_id)
            out.append(
                gb26875.encode(
                    serial=self.serial,
                    sent_at=now,
                    source=frame.destination,
                    destination=frame.source,
                    command=commands.COMMAND_OF[name],
                    data=data,
                    version=frame.version,
                    tz=self.tz,
                )
            )
        return out

    async def serve(self) -> asyncio.Server:
        listen = self.section.listen
        assert listen is not None
        server = self.server = await asyncio.start_server(self._client, listen.host, listen.port)
        return server

    def close_connections(self) -> None:
        for w in list(self._writers):
            w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = f"gb26875 tcp {peer[0]}:{peer[1]}" if peer else "gb26875 tcp"
        self._writers.add(writer)
        try:
            await pump_connection(
                reader,
                writer,
                self._stream(),
                self._handler(source),
                source=source,
                frame_timeout_s=self.section.frame_timeout_s,
                idle_timeout_s=self.section.idle_timeout_s,
            )
        finally:
            self._writers.discard(writer)

    def _handler(self, source: str) -> Handle:
        """What one connection or line does with what it read; counts the replies."""

        async def handle(items: list[Item]) -> list[bytes]:
            replies = await self.handle(items, source)
            self.replies += len(replies)
            return replies

        return handle

    async def run_serial(self, port: SerialPort) -> None:
        line = self.lines[port.id] = SerialLine(port)
        await pump_line(
            line,
            self._stream(),
            self._handler(f"gb26875 serial {port.id}"),
            source=f"gb26875 serial {port.id}",
            frame_timeout_s=self.section.frame_timeout_s,
        )


async def start(host: Host, setup: FieldSetup) -> Gb26875Driver:
    """The `[gb26875]` listener (if configured) and one reader per alarm-panel serial port."""
    section = setup.section if isinstance(setup.section, Gb26875Section) else Gb26875Section()
    driver = Gb26875Driver(host, section)
    await setup.serve_and_read("gb26875", driver)
    return driver
