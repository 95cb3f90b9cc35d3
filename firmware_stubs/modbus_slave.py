"""Simulated Modbus RTU slaves: pymodbus's own server on a serial line, with faults.

Several units share one bus, as on an RS-485 line. Faults are applied to the responses
of one unit: `silence` (no answer: a dead slave), `garbage` (bytes before the answer),
`truncated` (the answer cut short), `bad_crc` (the last CRC byte flipped). A fault lasts
for the given number of responses (or for ever with -1). Writes (functions 6 and 16)
are answered by pymodbus's server; every request frame read is kept in `received`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSimulatorContext,
)
from pymodbus.server import ModbusSerialServer

FAULTS = ("silence", "garbage", "truncated", "bad_crc")


@dataclass
class Fault:
    kind: str
    remaining: int  # -1: for ever


@dataclass
class SlaveBus:
    path: str
    holding: dict[int, list[int]]  # unit -> holding registers from address 0
    inputs: dict[int, list[int]] = field(default_factory=dict)
    baud: int = 19200
    faults: dict[int, Fault] = field(default_factory=dict)
    answered: int = 0
    _server: ModbusSerialServer | None = None
    received: list[bytes] = field(default_factory=list)  # request frames, as read
    _task: asyncio.Task[None] | None = None

    def _context(self) -> ModbusServerContext:
        # pymodbus's data blocks start one above the protocol address
        block = ModbusSequentialDataBlock
        devices: dict[int, ModbusDeviceContext | ModbusSimulatorContext] = {
            unit: ModbusDeviceContext(
                hr=block(1, regs),  # type: ignore[no-untyped-call]
                ir=block(1, self.inputs.get(unit, [0] * len(regs))),  # type: ignore[no-untyped-call]
            )
            for unit, regs in self.holding.items()
        }
        return ModbusServerContext(devices=devices, single=False)

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending and data:
            self.received.append(bytes(data))
        if not sending or not data:
            return data
        unit = data[0]
        fault = self.faults.get(unit)
        if unit not in self.holding:
            return b""  # pymodbus would answer an unknown unit; a real bus stays silent
        if fault is None or fault.remaining == 0:
            self.answered += 1
            return data
        if fault.remaining > 0:
            fault.remaining -= 1
        if fault.kind == "silence":
            return b""
        if fault.kind == "garbage":
            return b"\x00\xff\x13" + data
        if fault.kind == "truncated":
            return data[: len(data) // 2]
        return data[:-1] + bytes([data[-1] ^ 0xFF])

    async def start(self) -> None:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self._server = ModbusSerialServer(
            self._context(), port=self.path, baudrate=self.baud, trace_packet=self._trace
        )
        self._task = asyncio.create_task(self._server.serve_forever())

    def set(self, unit: int, register: int, value: int) -> None:
        self.holding[unit][register] = value

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
