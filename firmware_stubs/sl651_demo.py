"""SL651 stations for the demo: one in HEX/BCD mode, one in ASCII mode, over real TCP.

Each sends a timed report (32: PJ, PT, Z, VT) every `interval_s`, waits for the centre's
frames and answers the commands the standard defines: 45 software version, 4A set clock
(it takes the centre's time), 51 clock, 37 real-time data. Reconnects when the link drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import datetime, tzinfo

from drivers.link.framing import Stream
from drivers.sl651 import ascii as sl651_ascii
from drivers.sl651 import codec as sl651

log = logging.getLogger("firmware_stubs.sl651_demo")
VERSION = "SLDEMO-2.1"


class DemoStation:
    def __init__(self, address: str, *, ascii_mode: bool, tz: tzinfo = sl651.BEIJING) -> None:
        self.address = address
        self.ascii = ascii_mode
        self.tz = tz
        self.serial = 0
        self.offset_ms = 0  # the station's clock minus real time (set by 4A)
        self.k = 0
        self.answered: list[int] = []  # functions of the commands it answered

    def now(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def _time(self, fields: int, ms: int | None = None) -> str:
        t = datetime.fromtimestamp((ms if ms is not None else self.now()) / 1000, self.tz)
        p = (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)[:fields]
        return "".join(f"{x:02d}" for x in p)

    def _frame(self, function: int, body_hex: str, body_text: str) -> bytes:
        if self.ascii:
            return sl651_ascii.encode(
                centre=1,
                station=self.address,
                password="1234",
                function=function,
                body=body_text.encode(),
            )
        return sl651.encode(
            centre=1,
            station=self.address,
            password="1234",
            function=function,
            body=bytes.fromhex(body_hex),
        )

    def report(self, function: int = 0x32, serial: int | None = None) -> bytes:
        if serial is None:
            self.serial = self.serial % 65535 + 1
            serial = self.serial
        self.k += 1
        pj = round(0.5 * (1 + math.sin(self.k / 3)), 1)
        pt = round(100 + 0.4 * self.k, 1)
        z = round(12.3 + 0.05 * math.sin(self.k / 5), 2)
        obs = self.now() // 60_000 * 60_000  # the observation minute
        head_hex = f"{serial:04X}{self._time(6)}F1F1{self.address}48F0F0{self._time(5, obs)}"
        body_hex = (
            head_hex
            + f"2019{round(pj * 10):06d}2619{round(pt * 10):06d}"
            + f"3923{round(z * 1000):08d}38121260"
        )
        text = (
            f"{serial:04X}{self._time(6)}ST {self.address} H TT {self._time(5, obs)} "
            f"PJ {pj:.1f} PT {pt:.1f} Z {z:.2f} VT 12.60 "
        )
        return self._frame(function, body_hex, text)

    def answer(self, command: sl651.Frame) -> bytes | None:
        f = command.header.function
        serial = command.serial or 0
        station_hex = f"{serial:04X}{self._time(6)}F1F1{self.address}"
        station_text = f"{serial:04X}{self._time(6)}ST {self.address} "
        if f == 0x4A and command.sent_at is not None:
            self.offset_ms = command.sent_at - int(time.time() * 1000)
            station_hex = f"{serial:04X}{self._time(6)}F1F1{self.address}"
            station_text = f"{serial:04X}{self._time(6)}ST {self.address} "
        if f in (0x4A, 0x51):
            out = self._frame(f, station_hex, station_text)
        elif f == 0x45:
            v = VERSION.encode().hex()
            out = self._frame(f, f"{station_hex}{len(VERSION):02X}{v}", f"{station_text}{VERSION} ")
        elif f == 0x37:
            out = self.report(0x37, serial)
        else:
            return None
        self.answered.append(f)
        return out

    async def run(self, port: int, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await _sleep(stop, 1.0)
                continue
            try:
                await self._session(r, w, stop, interval_s)
            except (OSError, asyncio.IncompleteReadError):
                log.debug("SL651 demo station: connection lost; dialling again")
            finally:
                w.close()
            await _sleep(stop, 1.0)

    async def _session(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, stop: asyncio.Event, every: float
    ) -> None:
        stream: Stream[sl651.Frame] = Stream(sl651.take)
        next_report = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_report:
                w.write(self.report())
                await w.drain()
                next_report = time.monotonic() + every
            try:
                data = await asyncio.wait_for(r.read(4096), 0.5)
            except TimeoutError:
                continue
            if not data:
                return
            for item in stream.feed(data):
                if isinstance(item, sl651.Frame) and item.header.downlink:
                    reply = self.answer(item)
                    if reply is not None:
                        w.write(reply)
                        await w.drain()


async def _sleep(stop: asyncio.Event, s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), s)
