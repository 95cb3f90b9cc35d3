"""A simulated 4G DTU in transparent mode, with the instrument behind it.

The DTU connects to the centre, sends its registration packet, a heartbeat packet every
`heartbeat_s`, and passes the instrument's bytes both ways. It drops its connection every
`drop_every_s` (every other drop cutting an SL651 report in half) and reconnects after
`reconnect_s`, as a DTU on a weak 4G link does many times a day.

Behind it: `RtuSlave`, a Modbus RTU slave answering functions 3 and 4 for its units (CRC
checked, absent units silent), or `Sl651Behind`, an SL 651 station sending timed reports
and waiting for each confirmation; an unconfirmed report is sent again after the next
reconnect, as a station's buffer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field

from drivers.link.framing import Stream, crc16
from drivers.modbus import codec as modbus_rtu
from drivers.sl651 import codec as sl651
from firmware_stubs.sl651_station import StationScript, frame_of

log = logging.getLogger("firmware_stubs.dtu")


@dataclass
class RtuSlave:
    holding: dict[int, list[int]]  # unit -> registers from address 0 (functions 3 and 4)
    answered: int = 0
    garbage_every: int = 0  # every n-th answer comes after line noise (0: never)

    def answer(self, f: modbus_rtu.ModbusFrame) -> bytes | None:
        regs = self.holding.get(f.unit)
        if regs is None or f.kind != "request" or f.address is None or f.count is None:
            return None
        if f.function not in (3, 4):
            body = bytes([f.unit, f.function | 0x80, 1])
        elif f.address + f.count > len(regs):
            body = bytes([f.unit, f.function | 0x80, 2])
        else:
            data = b"".join(v.to_bytes(2, "big") for v in regs[f.address : f.address + f.count])
            body = bytes([f.unit, f.function, len(data)]) + data
        self.answered += 1
        noise = (
            b"\x00\xff\x13"
            if self.garbage_every and self.answered % self.garbage_every == 0
            else b""
        )
        return noise + body + crc16(body).to_bytes(2, "little")


@dataclass
class Sl651Behind:
    script: StationScript
    interval_s: float = 0.2
    next: int = 0  # the first report not yet confirmed
    written: set[int] = field(default_factory=set)  # written whole while connected
    confirmed: list[int] = field(default_factory=list)


@dataclass
class DtuStub:
    host: str
    port: int
    registration: bytes
    behind: RtuSlave | Sl651Behind
    heartbeat: bytes | None = None
    heartbeat_s: float = 1.0
    drop_every_s: float | None = None
    reconnect_s: float = 0.3
    seed: int = 0
    connections: int = 0
    refused: int = 0  # connections the centre closed first
    heartbeats: int = 0
    _drops: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        rnd = random.Random(self.seed)
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(self.reconnect_s)
                continue
            self.connections += 1
            writer.write(self.registration)
            tasks = [
                asyncio.create_task(self._heartbeats(writer)),
                asyncio.create_task(self._carry(reader, writer)),
                asyncio.create_task(stop.wait()),
            ]
            if self.drop_every_s:
                wait = self.drop_every_s * rnd.uniform(0.7, 1.3)
                tasks.append(asyncio.create_task(asyncio.sleep(wait)))
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if tasks[1] in done and not tasks[1].cancelled() and tasks[1].result() == "closed":
                self.refused += 1
            self._drops += 1
            if isinstance(self.behind, Sl651Behind) and self._drops % 2 == 0:
                with contextlib.suppress(OSError, IndexError):
                    writer.write(frame_of(self.behind.script, self.behind.next)[:25])
                    await asyncio.sleep(0.05)  # on the wire before the link dies
            writer.transport.abort()  # a dropped link: no goodbye
            if not stop.is_set():
                await asyncio.sleep(self.reconnect_s)

    async def _heartbeats(self, writer: asyncio.StreamWriter) -> None:
        if self.heartbeat is None:
            await asyncio.Event().wait()
            return
        while True:
            await asyncio.sleep(self.heartbeat_s)
            writer.write(self.heartbeat)
            self.heartbeats += 1

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        b = self.behind
        if isinstance(b, RtuSlave):
            stream: Stream[modbus_rtu.ModbusFrame] = Stream(modbus_rtu.take)
            while True:
                data = await reader.read(4096)
                if not data:
                    return "closed"
                for item in stream.feed(data):
                    if isinstance(item, modbus_rtu.ModbusFrame):
                        out = b.answer(item)
                        if out is not None:
                            writer.write(out)
        confirmations: Stream[sl651.Frame] = Stream(sl651.take)
        while b.next < len(b.script.reports):
            k = b.next
            writer.write(frame_of(b.script, k))
            await writer.drain()
            # in the kernel, not our buffer (a transport has no event for an empty buffer)
            while writer.transport.get_write_buffer_size():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            b.written.add(k)
            while True:
                data = await reader.read(4096)
                if not data:
                    return "closed"
                got = [f for f in confirmations.feed(data) if isinstance(f, sl651.Frame)]
                if any(f.serial == k + 1 for f in got):
                    break
            b.confirmed.append(k)
            b.next = k + 1
            await asyncio.sleep(b.interval_s)
        await asyncio.Event().wait()
        return "done"
