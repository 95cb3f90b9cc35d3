"""Fire-alarm panels (GB/T 26875.3 user information transmission) over TCP and serial.

The transmission device sends `send data` (2) frames with system states and component
statuses. A fire alarm opens a hazard ticket directly (red, the panel as the actor; the
alarm's own key makes a resent frame open none). The confirm (3) goes back only after the
ticket and the batch are committed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from zoneinfo import ZoneInfo

from drivers.gb26875 import codec as gb26875
from drivers.gb26875.config import Gb26875Section, Gb26875Transport
from drivers.host import BatchBuilder, DeviceRef, FieldSetup, Host, once
from drivers.link.config import SerialPort
from drivers.link.frame_io import Handle, pump_connection, pump_line
from drivers.link.framing import Reject, Stream
from drivers.link.serial_line import SerialLine
from gateway.core.model import Level

log = logging.getLogger("stationgw.gb26875")

Item = gb26875.Frame | Reject


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

    def _stream(self) -> Stream[gb26875.Frame]:
        return Stream(functools.partial(gb26875.take, tz=self.tz))

    async def handle(self, items: list[Item], source: str) -> list[bytes]:
        b = BatchBuilder(self.host, "gb26875", self.once)
        replies: list[bytes] = []
        alarms: list[tuple[DeviceRef, gb26875.Status]] = []
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
            if item.command != 2:
                continue  # confirms and responses to us need no answer
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
