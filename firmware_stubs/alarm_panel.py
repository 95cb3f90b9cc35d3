"""A simulated user information transmission device of a fire-alarm panel (GB/T 26875.3).

Sends `send data` frames (system state, component status) over TCP and waits for the
centre's confirm of each. Faults: `garbage` before a frame, `truncated` (half a frame
first), `bad_checksum` (a corrupted copy first), `resend` (the same frame twice, as when
a confirm was lost), `disconnect` (the connection dropped mid-frame, then the frame again
on a new one), `silence` (a pause).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime

from drivers.gb26875 import codec as gb26875
from drivers.link.framing import Stream

FAULTS = ("garbage", "truncated", "bad_checksum", "resend", "disconnect", "silence")
CENTRE = "000000000000"


def _time(ms: int) -> bytes:
    t = datetime.fromtimestamp(ms / 1000, gb26875.LOCAL)
    return bytes([t.second, t.minute, t.hour, t.day, t.month, t.year - 2000])


def system_state(address: str, serial: int, at: int, state: int = 1) -> bytes:
    data = bytes([1, 1, 1, 0]) + state.to_bytes(2, "little") + _time(at)
    return gb26875.encode(
        serial=serial, sent_at=at, source=address, destination=CENTRE, command=2, data=data
    )


def component(
    address: str, serial: int, at: int, component_address: int, state: int, description: str
) -> bytes:
    desc = description.encode("gb18030")[:31].ljust(31, b"\x00")
    obj = (
        bytes([1, 1, 21])
        + component_address.to_bytes(4, "little")
        + state.to_bytes(2, "little")
        + desc
        + _time(at)
    )
    return gb26875.encode(
        serial=serial,
        sent_at=at,
        source=address,
        destination=CENTRE,
        command=2,
        data=bytes([2, 1]) + obj,
    )


def faulty(fault: str, frame: bytes) -> bytes:
    if fault == "garbage":
        return b"\x00\x40\x23\x23junk"
    if fault == "truncated":
        return frame[: len(frame) // 2]
    if fault == "bad_checksum":
        return frame[:-3] + bytes([frame[-3] ^ 0xFF]) + frame[-2:]
    return b""


@dataclass
class PanelScript:
    frames: list[bytes]
    faults: dict[int, str] = field(default_factory=dict)


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def run_tcp(s: PanelScript, host: str, port: int, *, reply_wait_s: float = 10.0) -> list[int]:
    """Send every frame until confirmed; return the serials confirmed, in order.

    `disconnect` sends half the frame, drops the connection and sends the frame again on
    a new one; `silence` pauses before the frame."""
    reader, writer = await _connect(host, port)
    stream: Stream[gb26875.Frame] = Stream(gb26875.take)
    confirmed: list[int] = []
    try:
        for k, frame in enumerate(s.frames):
            fault = s.faults.get(k)
            if fault == "disconnect":
                writer.write(frame[: len(frame) // 2])
                await writer.drain()
                await _close(writer)
                reader, writer = await _connect(host, port)
                stream = Stream(gb26875.take)
            elif fault == "silence":
                await asyncio.sleep(0.5)
            elif fault is not None:
                writer.write(faulty(fault, frame))
            writer.write(frame)
            if fault == "resend":
                writer.write(frame)
            await writer.drain()
            want = 2 if fault == "resend" else 1
            async with asyncio.timeout(reply_wait_s):
                while want:
                    data = await reader.read(4096)
                    if not data:
                        return confirmed
                    for item in stream.feed(data):
                        if isinstance(item, gb26875.Frame) and item.command == 3:
                            confirmed.append(item.serial)
                            want -= 1
    finally:
        await _close(writer)
    return confirmed


# --- answering the centre's requests and controls ---------------------------------------


@dataclass
class Panel:
    """A transmission device that also answers the centre: component status requests
    (type 62, command 4) with a response (5) of type 2 objects, system state requests
    (61) with type 1 objects, clock synchronisation (type 90, command 1) by taking the
    centre's time and confirming (3) — each with the serial of the centre's frame."""

    address: str
    components: dict[tuple[int, int, int], tuple[int, str]]  # (sys type, sys addr, comp) ->
    # (state bits, description)
    system_state: int = 1  # normal
    clock_offset_ms: int = 0  # the panel's clock minus real time (set by type 90)
    received: list[gb26875.Frame] = field(default_factory=list)  # the centre's commands
    raw: list[bytes] = field(default_factory=list)  # their bytes as received

    def now(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def answer(self, f: gb26875.Frame) -> bytes | None:
        data = f.raw[27:-3]
        if f.command == 1 and data[:1] == b"\x5a" and len(data) == 8:
            s, mi, h, d, mo, y = data[2:8]
            t = datetime(2000 + y, mo, d, h, mi, s, tzinfo=gb26875.LOCAL)
            self.clock_offset_ms = int(t.timestamp() * 1000) - int(time.time() * 1000)
            return self._frame(f, 3, b"")
        if f.command == 4 and data[:1] == b"\x3e" and len(data) == 8:
            key = (data[2], data[3], int.from_bytes(data[4:8], "little"))
            state, description = self.components.get(key, (0, ""))
            desc = description.encode("gb18030")[:31].ljust(31, b"\x00")
            obj = (
                bytes([key[0], key[1], 21])
                + key[2].to_bytes(4, "little")
                + state.to_bytes(2, "little")
                + desc
                + _time(self.now())
            )
            return self._frame(f, 5, bytes([2, 1]) + obj)
        if f.command == 4 and data[:1] == b"\x3d" and len(data) == 4:
            obj = bytes([data[2], data[3]]) + self.system_state.to_bytes(2, "little")
            return self._frame(f, 5, bytes([1, 1]) + obj + _time(self.now()))
        return self._frame(f, 6, b"")  # deny what it does not know

    def _frame(self, f: gb26875.Frame, command: int, data: bytes) -> bytes:
        return gb26875.encode(
            serial=f.serial,
            sent_at=self.now(),
            source=self.address,
            destination=f.source,
            command=command,
            data=data,
        )


async def run_panel(
    panel: Panel, host: str, port: int, frames: list[bytes], *, linger_s: float = 5.0
) -> list[int]:
    """Send `frames` (each waits for its confirm), answering the centre's commands as they
    come, then keep listening `linger_s` after the last frame or command; returns the
    serials of the frames confirmed."""
    reader, writer = await _connect(host, port)
    stream: Stream[gb26875.Frame] = Stream(gb26875.take)
    confirmed: list[int] = []
    sent = {gb26875.parse(f).serial for f in frames}
    try:
        for frame in frames:
            writer.write(frame)
        await writer.drain()
        while True:
            try:
                data = await asyncio.wait_for(reader.read(4096), linger_s)
            except TimeoutError:
                return confirmed
            if not data:
                return confirmed
            for item in stream.feed(data):
                if not isinstance(item, gb26875.Frame):
                    continue
                if item.command == 3 and item.serial in sent:
                    confirmed.append(item.serial)
                    continue
                panel.received.append(item)
                panel.raw.append(item.raw)
                out = panel.answer(item)
                if out is not None:
                    writer.write(out)
                    await writer.drain()
    finally:
        await _close(writer)
