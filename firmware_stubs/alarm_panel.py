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
from dataclasses import dataclass, field

from drivers.gb26875 import codec as gb26875
from drivers.link.framing import Stream

FAULTS = ("garbage", "truncated", "bad_checksum", "resend", "disconnect", "silence")
CENTRE = "000000000000"


def _time(ms: int) -> bytes:
    from datetime import datetime

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
