"""The gateway as Modbus RTU master over a DTU's socket: the local bus's register maps,
timeouts, retries and per-device isolation, with a TCP connection for the wire.

One task per DTU polls the devices behind it on their own schedules, one request at a
time (the DTU bridges one half-duplex line). A slave that does not answer costs the others
at most its own `timeout_s × (retries + 1)` per poll and is marked offline; a DTU that is
not connected costs nothing: its task waits for the registration, and the other DTUs'
tasks never wait for it. A DTU that drops mid-poll ends that round; polls go on on the
connection that replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from drivers.dtu.config import DtuSection
from drivers.dtu.server import DtuConnection, DtuDriver
from drivers.host import BatchBuilder, Host, once
from drivers.link.framing import crc16
from drivers.modbus.codec import EXCEPTIONS, ModbusFrame
from drivers.modbus.config import ModbusRtuTransport, Register
from drivers.modbus.master import PollFailed, register_value

log = logging.getLogger("stationgw.dtu")


class Dropped(Exception):
    """The DTU's connection closed during a poll."""


def read_request(unit: int, function: int, address: int, count: int) -> bytes:
    body = bytes([unit, function]) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    return body + crc16(body).to_bytes(2, "little")


@dataclass
class DtuSlave:
    device: str
    t: ModbusRtuTransport
    due: float = 0.0
    polls: int = 0
    failures: int = 0


class DtuModbusMaster:
    def __init__(self, host: Host, driver: DtuDriver, dtu: DtuSection) -> None:
        self.host = host
        self.driver = driver
        self.dtu = dtu
        self.slaves = [
            DtuSlave(d.id, d.transport)
            for d in host.devices
            if isinstance(d.transport, ModbusRtuTransport) and d.transport.dtu == dtu.id
        ]
        self.once = once("dtu")

    async def _answer(
        self, conn: DtuConnection, unit: int, function: int, wait: float
    ) -> ModbusFrame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        closed = asyncio.ensure_future(conn.closed.wait())
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise PollFailed(f"no answer within {wait:g} s", True)
                got = asyncio.ensure_future(conn.inbox.get())
                done, _ = await asyncio.wait(
                    {got, closed}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                if got not in done:
                    got.cancel()
                    if closed in done:
                        raise Dropped()
                    continue
                frame = got.result()
                if (
                    frame.unit == unit
                    and frame.function & 0x7F == function
                    and frame.kind != "request"
                ):
                    return frame
        finally:
            closed.cancel()

    async def _read(self, conn: DtuConnection, s: DtuSlave, reg: Register) -> float:
        while not conn.inbox.empty():  # a late answer to an earlier request
            conn.inbox.get_nowait()
        conn.writer.write(read_request(s.t.unit, reg.function, reg.address, reg.count))
        try:
            await conn.writer.drain()
        except (ConnectionError, OSError):
            raise Dropped() from None
        f = await self._answer(conn, s.t.unit, reg.function, s.t.timeout_s)
        if f.kind == "exception":
            name = EXCEPTIONS.get(f.exception or 0, "unknown")
            raise PollFailed(f"exception response {f.exception} ({name})", False)
        if len(f.registers) != reg.count:
            raise PollFailed(f"{len(f.registers)} registers for {reg.count} asked", False)
        return register_value(list(f.registers), reg)

    async def poll(self, conn: DtuConnection, s: DtuSlave, b: BatchBuilder) -> None:
        values: list[tuple[str, int, float]] = []
        for reg in s.t.registers:
            for attempt in range(s.t.retries + 1):
                try:
                    values.append((reg.metric, b.now, await self._read(conn, s, reg)))
                    break
                except PollFailed as e:
                    if attempt < s.t.retries:
                        continue
                    s.failures += 1
                    self.host.count(s.device, "timeouts" if e.timeout else "malformed", b.now)
                    b.batch.statuses[s.device] = (False, b.now)
                    self.once.warning(
                        f"poll:{s.device}",
                        "modbus %s (unit %d behind DTU %s): register %d: %s; marked offline",
                        s.device,
                        s.t.unit,
                        self.dtu.id,
                        reg.address,
                        e.reason,
                    )
                    return
        s.polls += 1
        b.readings(s.device, values)
        b.seen(s.device)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn = await self.driver.connected(self.dtu.id)
            now = loop.time()
            due = [s for s in self.slaves if s.due <= now]
            if not due:
                wait = min(s.due for s in self.slaves) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.closed.wait(), wait)
                continue
            b = BatchBuilder(self.host, "modbus", self.once)
            for s in due:
                nxt = s.due + s.t.poll_s
                s.due = nxt if nxt > now else now + s.t.poll_s
                try:
                    await self.poll(conn, s, b)
                except Dropped:
                    s.due = 0.0  # poll it first on the next connection
                    break
            if not b.empty:
                await self.host.submit(b.batch)
