"""A simulated HJ 212-2017 analyser (data acquisition unit) over TCP, with faults.

Sends real-time data (CN=2011) with Flag=5 and waits for the centre's data answer
(CN=9014 with the same QN) to each; an unanswered upload is sent again on the next
connection, as the unit's buffer would. Values come from a script: (timestamp ms,
{code: value}, {code: flag}). Faults before an upload: `garbage` bytes, `bad_crc` (a
copy with a wrong CRC first), `truncated` (half a frame first), `disconnect` mid-frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from drivers.hj212 import codec
from drivers.link.framing import Stream

FAULTS = ("garbage", "bad_crc", "truncated", "disconnect")
BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass
class Upload:
    ts: int
    values: dict[str, float]
    flags: dict[str, str] = field(default_factory=dict)  # code -> N, D, M …


def realtime(
    mn: str, u: Upload, *, pw: str = "123456", st: str = "22", tz: tzinfo = BEIJING
) -> bytes:
    t = datetime.fromtimestamp(u.ts / 1000, tz)
    qn = t.strftime("%Y%m%d%H%M%S") + f"{u.ts % 1000:03d}"
    cp = ";".join(
        f"{code}-Rtd={value:g},{code}-Flag={u.flags.get(code, 'N')}"
        for code, value in u.values.items()
    )
    return codec.encode(
        f"QN={qn};ST={st};CN=2011;PW={pw};MN={mn};Flag=5;"
        f"CP=&&DataTime={t.strftime('%Y%m%d%H%M%S')};{cp}&&"
    )


def faulty(fault: str, frame: bytes) -> bytes:
    if fault == "garbage":
        return b"AT+CSQ\r\n+CSQ: 23,99\r\n"
    if fault == "bad_crc":
        return frame[:-6] + (b"0000" if frame[-6:-2] != b"0000" else b"FFFF") + b"\r\n"
    if fault == "truncated":
        return frame[: len(frame) // 2]
    return b""


@dataclass
class Analyser:
    mn: str
    uploads: list[Upload]
    faults: dict[int, str] = field(default_factory=dict)  # upload index -> fault first
    answered: list[int] = field(default_factory=list)
    sent: int = 0

    async def _answer(self, reader: asyncio.StreamReader, wait_s: float) -> codec.Frame | None:
        stream: Stream[codec.Frame] = Stream(codec.take)
        async with asyncio.timeout(wait_s):
            while True:
                data = await reader.read(4096)
                if not data:
                    return None
                for item in stream.feed(data):
                    if isinstance(item, codec.Frame):
                        return item

    async def run(
        self,
        host: str,
        port: int,
        *,
        interval_s: float = 0.0,
        answer_wait_s: float = 5.0,
        max_attempts: int = 5,
        stop: asyncio.Event | None = None,
    ) -> list[int]:
        """Send every upload until answered; return the indexes answered."""
        k = len(self.answered)
        attempts = 0
        while k < len(self.uploads) and attempts < max_attempts:
            if stop is not None and stop.is_set():
                break
            attempts += 1
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            try:
                with contextlib.suppress(TimeoutError, OSError):
                    while k < len(self.uploads) and not (stop is not None and stop.is_set()):
                        frame = realtime(self.mn, self.uploads[k])
                        fault = self.faults.pop(k, None)
                        if fault == "disconnect":
                            writer.write(frame[:30])
                            await writer.drain()
                            break
                        if fault is not None:
                            writer.write(faulty(fault, frame))
                        writer.write(frame)
                        await writer.drain()
                        self.sent += 1
                        answer = await self._answer(reader, answer_wait_s)
                        if (
                            answer is None
                            or answer.cn != "9014"
                            or answer.qn != frame[9:26].decode()
                        ):
                            break
                        self.answered.append(k)
                        k += 1
                        attempts = 0
                        if interval_s:
                            await asyncio.sleep(interval_s)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        return self.answered
