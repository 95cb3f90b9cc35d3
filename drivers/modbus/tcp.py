"""Modbus TCP devices: sensors, PLCs and serial-to-Ethernet converters on the station LAN.

pymodbus's TCP client does the framing (MBAP header, transaction ids); this module polls
with the register maps of the RTU bus (drivers/modbus/master.register_value: address,
function, type, word order, scale, offset -> metric), a unit id per device, a timeout and
retries per device. Devices at the same host and port share one connection and are
polled one at a time (a converter in front of an RS-485 line is half-duplex); every
endpoint has its own task, so a dead one never stalls another. A lost connection is
reopened by the poll loop, at most every `reconnect_s`; a failed poll marks the device
offline at once and counts a timeout in its health. Answers carrying unit id 255 for the
unit asked (or the unit's own id to a request for 255), as serial-to-Ethernet gateways send
them, are taken when their transaction id matches and counted per device as a field
variant (`Unit255Framer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ModbusPDU

from drivers.host import BatchBuilder, FieldSetup, Host, once
from drivers.modbus.config import ModbusTcpTransport, Register
from drivers.modbus.master import COMMAND_CHECK_S, PollFailed, read_register, run_commands

log = logging.getLogger("stationgw.modbus_tcp")
UNIT_ANY = 255  # Modbus TCP's "unit id not significant" (Messaging on TCP/IP guide, 4.4.2)


class Unit255Framer(FramerSocket):
    """MBAP framing that takes an answer whose unit id is 255 for the unit asked (or an
    answer from unit N to a request for unit 255), as serial-to-Ethernet gateways send them,
    when its transaction id is the request's: one request is in flight per connection, so
    the answer cannot belong to anything else. pymodbus alone drops such answers ("request
    ask for id=5 but got id=255, Skipping") and the poll times out. Each one taken is noted
    in `swapped` (asked, answered) for the driver to count as a field variant."""

    def __init__(self) -> None:
        super().__init__(DecodePDU(False))
        self.swapped: list[tuple[int, int]] = []

    def handleFrame(
        self, data: bytes, exp_devid: int, exp_tid: int
    ) -> tuple[int, ModbusPDU | None]:
        if len(data) >= self.MIN_SIZE and exp_devid and data[6] != exp_devid:
            got, tid = data[6], int.from_bytes(data[0:2], "big")
            if UNIT_ANY in (got, exp_devid) and tid == exp_tid:
                data = data[:6] + bytes([exp_devid]) + data[7:]
                self.swapped.append((exp_devid, got))
        return super().handleFrame(data, exp_devid, exp_tid)


def unit_variant(asked: int, got: int) -> str:
    return f"unit {got} in the answer to unit {asked} (serial-to-Ethernet gateway)"


@dataclass
class TcpSlave:
    device: str
    t: ModbusTcpTransport
    due: float = 0.0
    polls: int = 0
    failures: int = 0
    commands_due: bool = False  # polled well: its queued writes go out after the commit
    commands_at: float = 0.0  # loop time of the next look into the queue (COMMAND_CHECK_S)


def endpoints(gw: Host) -> dict[tuple[str, int], list[TcpSlave]]:
    out: dict[tuple[str, int], list[TcpSlave]] = {}
    for d in gw.devices:
        if isinstance(d.transport, ModbusTcpTransport):
            out.setdefault((d.transport.host, d.transport.port), []).append(
                TcpSlave(d.id, d.transport)
            )
    return out


class ModbusTcpEndpoint:
    def __init__(self, gw: Host, host: str, port: int, slaves: list[TcpSlave]) -> None:
        self.gw = gw
        self.host = host
        self.port = port
        self.slaves = slaves
        self.once = once("modbus_tcp")
        timeout = max(s.t.timeout_s for s in slaves)
        self.client = AsyncModbusTcpClient(
            host,
            port=port,
            timeout=timeout,
            retries=0,
            reconnect_delay=0,
            trace_connect=self._traced,
        )
        self.framer = Unit255Framer()
        self.client.ctx.framer = self.framer  # the answers' unit ids as gateways send them
        self.connects = 0
        self.name = f"{host}:{port}"

    def _traced(self, up: bool) -> None:
        if up:
            self.connects += 1
            log.info("modbus tcp %s connected", self.name)

    async def _connected(self) -> bool:
        if self.client.connected:
            return True
        with contextlib.suppress(ModbusException, OSError):
            if await self.client.connect():
                return True
        self.once.warning(f"open:{self.name}", "modbus tcp %s: cannot connect; retrying", self.name)
        return False

    async def _read(self, s: TcpSlave, reg: Register) -> float:
        return await read_register(self.client, reg, s.t.unit, s.t.timeout_s)

    def _failed(self, s: TcpSlave, b: BatchBuilder, reason: str, timeout: bool) -> None:
        s.failures += 1
        self.gw.count(s.device, "timeouts" if timeout else "malformed", b.now)
        b.batch.statuses[s.device] = (False, b.now)
        self.once.warning(
            f"poll:{s.device}",
            "modbus tcp %s (unit %d at %s): %s; marked offline",
            s.device,
            s.t.unit,
            self.name,
            reason,
        )

    async def poll(self, s: TcpSlave, b: BatchBuilder) -> None:
        values: list[tuple[str, int, float]] = []
        self.framer.swapped.clear()
        for reg in s.t.registers:
            for attempt in range(s.t.retries + 1):
                try:
                    values.append((reg.metric, b.now, await self._read(s, reg)))
                    break
                except PollFailed as e:
                    if attempt < s.t.retries and self.client.connected:
                        continue
                    self._failed(s, b, f"register {reg.address}: {e.reason}", e.timeout)
                    return
        s.polls += 1
        for asked, got in self.framer.swapped:
            b.variant(s.device, unit_variant(asked, got))
        self.framer.swapped.clear()
        b.readings(s.device, values)
        b.seen(s.device)
        s.commands_due = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                due = [s for s in self.slaves if s.due <= now]
                if not due:
                    await asyncio.sleep(min(s.due for s in self.slaves) - now)
                    continue
                b = BatchBuilder(self.gw, "modbus_tcp", self.once)
                up = await self._connected()
                for s in due:
                    nxt = s.due + s.t.poll_s
                    s.due = nxt if nxt > now else now + s.t.poll_s
                    if not up:
                        self._failed(s, b, "cannot connect", True)
                        continue
                    await self.poll(s, b)
                    if not self.client.connected:
                        up = False  # the peer went away: the others fail fast this round
                if not b.empty:
                    await self.gw.submit(b.batch)
                for s in due:  # after the commit: the device answered, the line is free
                    if s.commands_due and loop.time() >= s.commands_at:
                        s.commands_due = False
                        s.commands_at = loop.time() + COMMAND_CHECK_S
                        await run_commands(self.gw, s.device, self.client, s.t.unit, s.t, self.once)
        finally:
            self.client.close()


class ModbusTcpDriver:
    """One endpoint (host:port) per connection; the devices at it share it."""

    def __init__(self, gw: Host) -> None:
        self.endpoints = {
            f"{host}:{port}": ModbusTcpEndpoint(gw, host, port, slaves)
            for (host, port), slaves in endpoints(gw).items()
        }


async def start(gw: Host, setup: FieldSetup) -> ModbusTcpDriver:
    driver = ModbusTcpDriver(gw)
    for name, ep in driver.endpoints.items():
        setup.spawn(f"modbus tcp {name}", ep.run)
    return driver
