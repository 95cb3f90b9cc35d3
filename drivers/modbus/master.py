"""Modbus RTU master: polls the slaves of one serial bus on their own schedules.

pymodbus (3.10+) does the framing; this module owns the schedule, the per-device timeout
and retries, the register maps from the station file (address, function, type, word
order, scale, offset -> metric) and the recovery when the USB adapter goes away.

A bus is half-duplex, so requests on it go one at a time; a dead slave costs the others
at most its own `timeout_s × (retries + 1)` per poll. A failed poll marks the device
offline at once and counts a timeout in its health; the next good poll brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, ModbusBaseClient
from pymodbus.exceptions import ModbusException

from drivers.host import BatchBuilder, DeviceRef, FieldSetup, Host, once
from drivers.link.config import SerialPort
from drivers.modbus import commands
from drivers.modbus.codec import EXCEPTIONS
from drivers.modbus.commands import Write
from drivers.modbus.config import ModbusRtuTransport, ModbusTcpTransport, Register
from gateway.core.logs import Once

Transport = ModbusRtuTransport | ModbusTcpTransport
# a device polled every fraction of a second asks the command queue (a writer transaction)
# at most this often; a write waits that much longer at worst
COMMAND_CHECK_S = 2.0

log = logging.getLogger("stationgw.modbus")

_TYPES = {
    "int16": AsyncModbusSerialClient.DATATYPE.INT16,
    "uint16": AsyncModbusSerialClient.DATATYPE.UINT16,
    "int32": AsyncModbusSerialClient.DATATYPE.INT32,
    "uint32": AsyncModbusSerialClient.DATATYPE.UINT32,
    "float32": AsyncModbusSerialClient.DATATYPE.FLOAT32,
}


def register_value(registers: Sequence[int], reg: Register) -> float:
    """The value of one register-map entry from the registers read for it."""
    raw = AsyncModbusSerialClient.convert_from_registers(
        list(registers), data_type=_TYPES[reg.type], word_order=reg.word_order
    )
    assert isinstance(raw, int | float)
    return float(raw) * reg.scale + reg.offset


async def read_register(
    client: ModbusBaseClient, reg: Register, unit: int, timeout_s: float
) -> float:
    """One register-map entry read from a unit, over RTU or TCP (pymodbus's clients share
    this API); a silent unit, an exception answer or a short answer is a PollFailed."""
    call = client.read_holding_registers if reg.function == 3 else client.read_input_registers
    try:
        rr = await asyncio.wait_for(call(reg.address, count=reg.count, device_id=unit), timeout_s)
    except TimeoutError:
        raise PollFailed(f"no answer within {timeout_s:g} s", True) from None
    except ModbusException as e:
        raise PollFailed(f"{e}", True) from e
    if rr.isError():
        raise PollFailed(f"exception response {rr}", False)
    if len(rr.registers) != reg.count:
        raise PollFailed(f"{len(rr.registers)} registers for {reg.count} asked", False)
    return register_value(rr.registers, reg)


async def write(client: ModbusBaseClient, w: Write, unit: int, timeout_s: float) -> str:
    """One planned write (drivers/modbus/commands.py) to a unit, over RTU or TCP; the
    answer in words for the audit. A silent unit is a PollFailed with `timeout`; an
    exception answer, or an echo that is not what was written, one without."""
    try:
        if w.function == 6:
            call = client.write_register(w.address, w.words[0], device_id=unit)
        else:
            call = client.write_registers(w.address, list(w.words), device_id=unit)
        rr = await asyncio.wait_for(call, timeout_s)
    except TimeoutError:
        raise PollFailed(f"no answer within {timeout_s:g} s", True) from None
    except ModbusException as e:
        raise PollFailed(f"{e}", True) from e
    if rr.isError():
        code = getattr(rr, "exception_code", None)
        raise PollFailed(f"exception response {code} ({EXCEPTIONS.get(code or 0, '?')})", False)
    if rr.address != w.address or (w.function == 6 and list(rr.registers) != [w.words[0]]):
        raise PollFailed(
            f"the answer echoes {rr.address}/{list(rr.registers)}, not the write", False
        )
    if w.function == 16 and getattr(rr, "count", len(w.words)) != len(w.words):
        raise PollFailed(f"the answer says {rr.count} registers written, not {len(w.words)}", False)
    words = " ".join(f"{x:04X}" for x in w.words)
    return (
        f"已写入 {w.register.metric} = {w.value:g} (寄存器 {w.address}, 功能码 {w.function}, "
        f"{words})"
    )


async def run_commands(
    host: Host, device: str, client: ModbusBaseClient, unit: int, t: Transport, once: Once
) -> None:
    """The device's queued writes, after its poll (the line is free then)."""
    for command_id, name, args in await host.commands_due(device):
        try:
            w = commands.plan(name, args, t)
        except commands.CommandError as e:
            await host.command_failed(command_id, str(e))
            continue
        await host.command_sent(command_id)
        try:
            answer = await write(client, w, unit, t.timeout_s)
        except PollFailed as e:
            once.warning(f"write:{device}", "modbus %s: %s %s: %s", device, name, args, e.reason)
            if not e.timeout:  # the device refused it: a definite answer
                await host.command_failed(command_id, e.reason)
            continue  # no answer: sent again after the queue's timeout, at a later poll
        await host.command_answered(device, name, answer)


class PollFailed(Exception):
    def __init__(self, reason: str, timeout: bool) -> None:
        self.reason = reason
        self.timeout = timeout
        super().__init__(reason)


@dataclass
class Slave:
    device: DeviceRef
    t: ModbusRtuTransport
    due: float = 0.0
    polls: int = 0
    failures: int = 0
    commands_due: bool = False  # polled well: its queued writes go out after the commit
    commands_at: float = 0.0  # loop time of the next look into the queue (COMMAND_CHECK_S)


class ModbusBus:
    def __init__(self, host: Host, port: SerialPort) -> None:
        self.host = host
        self.port = port
        self.slaves = [
            Slave(d, d.transport)
            for d in host.devices
            if isinstance(d.transport, ModbusRtuTransport) and d.transport.port == port.id
        ]
        self.once = once("modbus")
        self.client = AsyncModbusSerialClient(
            str(port.path),
            baudrate=port.baud,
            bytesize=port.bytesize,
            parity=port.parity,
            stopbits=port.stopbits,
            timeout=max((s.t.timeout_s for s in self.slaves), default=1.0),
            retries=0,
            reconnect_delay=0,  # no background reconnect task: the poll loop reopens
            trace_connect=self._traced,
        )
        self.connects = 0

    def _traced(self, up: bool) -> None:
        # pymodbus also reopens by itself when a request finds the port closed, so the
        # openings are counted here, where every path reports them
        if up:
            self.connects += 1
            log.info("modbus bus %s (%s) open", self.port.id, self.port.path)

    async def _connected(self) -> bool:
        if self.client.connected:
            return True
        with contextlib.suppress(ModbusException, OSError):
            if await self.client.connect():
                return True
        self.once.warning(
            f"open:{self.port.id}",
            "modbus bus %s (%s): cannot open; retrying",
            self.port.id,
            self.port.path,
        )
        return False

    async def _read(self, s: Slave, reg: Register) -> float:
        return await read_register(self.client, reg, s.t.unit, s.t.timeout_s)

    async def poll(self, s: Slave, b: BatchBuilder) -> None:
        values: list[tuple[str, int, float]] = []
        for reg in s.t.registers:
            for attempt in range(s.t.retries + 1):
                try:
                    values.append((reg.metric, b.now, await self._read(s, reg)))
                    break
                except PollFailed as e:
                    if attempt < s.t.retries:
                        continue
                    s.failures += 1
                    self.host.count(s.device.id, "timeouts" if e.timeout else "malformed", b.now)
                    b.batch.statuses[s.device.id] = (False, b.now)
                    self.once.warning(
                        f"poll:{s.device.id}",
                        "modbus %s (unit %d on %s): register %d: %s; marked offline",
                        s.device.id,
                        s.t.unit,
                        self.port.id,
                        reg.address,
                        e.reason,
                    )
                    return
        s.polls += 1
        b.readings(s.device.id, values)
        b.seen(s.device.id)
        s.commands_due = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not await self._connected():
                    await asyncio.sleep(0.5)
                    continue
                now = loop.time()
                due = [s for s in self.slaves if s.due <= now]
                if not due:
                    await asyncio.sleep(min(s.due for s in self.slaves) - now)
                    continue
                b = BatchBuilder(self.host, "modbus", self.once)
                for s in due:
                    nxt = s.due + s.t.poll_s
                    s.due = nxt if nxt > now else now + s.t.poll_s  # behind: skip, no burst
                    await self.poll(s, b)
                    if not self.client.connected:
                        break  # the adapter went away: reopen before the next slave
                if not b.empty:
                    await self.host.submit(b.batch)
                for s in due:  # after the commit: the device answered, the bus is free
                    if s.commands_due and loop.time() >= s.commands_at:
                        s.commands_due = False
                        s.commands_at = loop.time() + COMMAND_CHECK_S
                        await run_commands(
                            self.host, s.device.id, self.client, s.t.unit, s.t, self.once
                        )
        finally:
            self.client.close()


class ModbusDriver:
    """One master per Modbus RTU serial bus that has slaves configured."""

    def __init__(self, host: Host, ports: list[SerialPort]) -> None:
        self.buses: dict[str, ModbusBus] = {}
        for port in ports:
            if port.protocol == "modbus_rtu":
                bus = ModbusBus(host, port)
                if bus.slaves:
                    self.buses[port.id] = bus


async def start(host: Host, setup: FieldSetup) -> ModbusDriver:
    driver = ModbusDriver(host, setup.serial_ports)
    for port_id, bus in driver.buses.items():
        setup.spawn(f"modbus {port_id}", bus.run)
    return driver
