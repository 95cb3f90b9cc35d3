"""A simulated SL 651 station: timed reports over TCP or a serial line, with faults.

Each report carries the station's own clock (minute resolution, as SL 651 has it) and
waits for the centre's confirmation; an unconfirmed report is sent again on the next
connection, as a station's buffer would. Faults to inject: `garbage` bytes before a
frame, a `truncated` frame before the real one, a frame with a `bad_crc` before the real
one, `disconnect` mid-frame, `silence` (a pause).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import tzinfo

from drivers.link.framing import Stream
from drivers.sl651 import codec as sl651

Fault = str  # "garbage" | "truncated" | "bad_crc" | "disconnect" | "silence"
FAULTS = ("garbage", "truncated", "bad_crc", "disconnect", "silence")


def element(code: int, value: float | None, size: int, decimals: int) -> bytes:
    """Identifier, definition byte and BCD value (FF first byte for negatives)."""
    head = bytes([code, size << 3 | decimals])
    if value is None:
        return head + b"\xff" * size
    n = round(abs(value) * 10**decimals)
    digits = 2 * (size - 1) if value < 0 else 2 * size
    text = f"{n:0{digits}d}"
    if len(text) > digits:
        raise ValueError(f"{value} does not fit {size} bytes with {decimals} decimals")
    data = bytes.fromhex(text)
    return head + (b"\xff" + data if value < 0 else data)


def timed_report(
    station: str,
    serial: int,
    obs_ms: int,
    sent_ms: int,
    pt: float,
    z: float,
    vt: float,
    tz: tzinfo = sl651.BEIJING,
    function: int = 0x32,
) -> bytes:
    body = (
        serial.to_bytes(2, "big")
        + sl651.bcd_time(sent_ms, tz)
        + b"\xf1\xf1"
        + bytes.fromhex(station)
        + b"\x48"
        + b"\xf0\xf0"
        + sl651.bcd_time(obs_ms, tz, 5)
        + element(0x26, pt, 3, 1)
        + element(0x39, z, 4, 3)
        + element(0x38, vt, 2, 2)
    )
    return sl651.encode(centre=1, station=station, password="1234", function=function, body=body)


@dataclass
class Report:
    obs_ms: int
    pt: float
    z: float
    vt: float


@dataclass
class StationScript:
    station: str
    reports: list[Report]
    faults: dict[int, Fault] = field(default_factory=dict)  # report index -> fault first


def script(
    station: str,
    count: int,
    start_ms: int,
    *,
    seed: int = 0,
    faults: dict[int, Fault] | None = None,
) -> StationScript:
    rnd = random.Random(seed)
    start = start_ms - start_ms % 60_000
    pt = 100.0
    reports = []
    for k in range(count):
        pt += round(rnd.uniform(0, 2), 1)
        reports.append(
            Report(
                start + k * 300_000,
                round(pt, 1),
                round(rnd.uniform(1, 3), 3),
                round(rnd.uniform(11.5, 13.5), 2),
            )
        )
    return StationScript(station, reports, faults or {})


def frame_of(s: StationScript, k: int) -> bytes:
    r = s.reports[k]
    return timed_report(s.station, k + 1, r.obs_ms, r.obs_ms + 6000, r.pt, r.z, r.vt)


def faulty_prefix(fault: Fault, frame: bytes) -> bytes:
    if fault == "garbage":
        return b"\x00\x7e\x13AT+OK\r\n\x7e"
    if fault == "truncated":
        return frame[: len(frame) // 2]
    if fault == "bad_crc":
        return frame[:-1] + bytes([frame[-1] ^ 0x5A])
    return b""


async def _confirmation(
    reader: asyncio.StreamReader, stream: Stream[sl651.Frame], wait_s: float
) -> sl651.Frame | None:
    async with asyncio.timeout(wait_s):
        while True:
            data = await reader.read(4096)
            if not data:
                return None
            for item in stream.feed(data):
                if isinstance(item, sl651.Frame):
                    return item


async def run_tcp(
    s: StationScript, host: str, port: int, *, reply_wait_s: float = 10.0, max_attempts: int = 5
) -> list[int]:
    """Send every report until confirmed; return the report indexes confirmed."""
    confirmed: list[int] = []
    k = 0
    attempts = 0
    while k < len(s.reports) and attempts < max_attempts:
        attempts += 1
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        stream: Stream[sl651.Frame] = Stream(sl651.take)
        try:
            # a timeout or a dropped connection ends this attempt; the next one reconnects
            with contextlib.suppress(TimeoutError, OSError):
                while k < len(s.reports):
                    frame = frame_of(s, k)
                    fault = s.faults.pop(k, None)
                    if fault == "disconnect":
                        writer.write(frame[:20])
                        await writer.drain()
                        break
                    if fault == "silence":
                        await asyncio.sleep(0.5)
                    elif fault is not None:
                        writer.write(faulty_prefix(fault, frame))
                    writer.write(frame)
                    await writer.drain()
                    reply = await _confirmation(reader, stream, reply_wait_s)
                    if reply is None or reply.serial != k + 1:
                        break
                    confirmed.append(k)
                    k += 1
                    attempts = 0
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return confirmed


# --- pictures (function 36, always multi-packet) ---------------------------------------


def picture_packets(
    station: str,
    serial: int,
    obs_ms: int,
    sent_ms: int,
    jpeg: bytes,
    *,
    packet_bytes: int = 1024,
    tz: tzinfo = sl651.BEIJING,
) -> list[bytes]:
    """SL 651-2014 table 40 (serial · send time · F1F1 station · type 48 · F0F0 obs time ·
    F3F3 · the JPEG) cut into `packet_bytes` pieces, each a SYN packet (total, sequence),
    ETB on all but the last, ETX on the last (table 19)."""
    body = (
        serial.to_bytes(2, "big")
        + sl651.bcd_time(sent_ms, tz)
        + b"\xf1\xf1"
        + bytes.fromhex(station)
        + b"\x48"
        + b"\xf0\xf0"
        + sl651.bcd_time(obs_ms, tz, 5)
        + b"\xf3\xf3"
        + jpeg
    )
    parts = [body[k : k + packet_bytes] for k in range(0, len(body), packet_bytes)]
    n = len(parts)
    return [
        sl651.encode(
            centre=1,
            station=station,
            password="1234",
            function=0x36,
            body=part,
            packet=(n, k + 1),
            end=sl651.ETB if k < n - 1 else sl651.ETX,
        )
        for k, part in enumerate(parts)
    ]


async def send_picture(
    host: str, port: int, packets: list[bytes], *, skip: int | None = None, wait_s: float = 10.0
) -> list[sl651.Frame]:
    """Send a picture's packets over one TCP connection (leaving out packet `skip`, then
    resending what the centre asks for with NAK) until the centre answers EOT; return the
    centre's answers in order."""
    reader, writer = await asyncio.open_connection(host, port)
    stream: Stream[sl651.Frame] = Stream(sl651.take)
    answers: list[sl651.Frame] = []
    try:
        for k, p in enumerate(packets, 1):
            if k != skip:
                writer.write(p)
        await writer.drain()
        while True:
            reply = await _confirmation(reader, stream, wait_s)
            if reply is None:
                return answers
            answers.append(reply)
            if reply.header.end == sl651.EOT:
                return answers
            if reply.header.end == sl651.NAK and reply.header.packet is not None:
                writer.write(packets[reply.header.packet[1] - 1])
                await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
