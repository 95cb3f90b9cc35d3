"""A simulated Modbus TCP slave (a PLC, or a serial-to-Ethernet converter with units
behind it): MBAP framing over a real TCP socket, holding and input registers per unit.

Functions 3 and 4 are answered, and the writes 6 and 16 (recorded in `writes`, the
registers changed); an address outside the bank gets exception 2 (illegal data
address); a unit not configured stays silent, as a converter whose RS-485 side times
out. `set()` changes a register while it runs; `stop()` and `start()` again simulate the
device going away and returning on the same port. The gateway's client is pymodbus, so
this framing is checked against an independent implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def answer(
    holding: dict[int, list[int]], adu: bytes, answer_unit: int | None = None
) -> bytes | None:
    """The response ADU to one request ADU (MBAP header + PDU), or None: silence. With
    `answer_unit`, the answer carries that unit id instead of the request's (what some
    serial-to-Ethernet gateways do: 255, or the RTU device's own address)."""
    tid, unit, pdu = adu[0:2], adu[6], adu[7:]
    regs = holding.get(unit)
    if regs is None or len(pdu) < 5:
        return None
    function = pdu[0]
    if function in (6, 16):
        body = _write(regs, pdu)
    elif function not in (3, 4):
        body = bytes([function | 0x80, 1])
    else:
        address = int.from_bytes(pdu[1:3], "big")
        count = int.from_bytes(pdu[3:5], "big")
        if not 1 <= count <= 125 or address + count > len(regs):
            body = bytes([function | 0x80, 2])
        else:
            data = b"".join(v.to_bytes(2, "big") for v in regs[address : address + count])
            body = bytes([function, len(data)]) + data
    out_unit = unit if answer_unit is None else answer_unit
    return tid + b"\x00\x00" + (len(body) + 1).to_bytes(2, "big") + bytes([out_unit]) + body


def _write(regs: list[int], pdu: bytes) -> bytes:
    """Function 6 (one register: the answer echoes the request) or 16 (several: the
    answer is function, address, count); an address outside the bank or a malformed
    request is exception 2 or 3."""
    function, address = pdu[0], int.from_bytes(pdu[1:3], "big")
    if function == 6:
        if address >= len(regs):
            return bytes([0x86, 2])
        regs[address] = int.from_bytes(pdu[3:5], "big")
        return pdu[:5]
    count = int.from_bytes(pdu[3:5], "big")
    if len(pdu) < 6 or pdu[5] != 2 * count or len(pdu) != 6 + 2 * count or not 1 <= count <= 123:
        return bytes([0x90, 3])
    if address + count > len(regs):
        return bytes([0x90, 2])
    for k in range(count):
        regs[address + k] = int.from_bytes(pdu[6 + 2 * k : 8 + 2 * k], "big")
    return pdu[:5]


@dataclass
class TcpSlave:
    holding: dict[int, list[int]]  # unit -> registers from address 0 (functions 3 and 4)
    host: str = "127.0.0.1"
    port: int = 0
    answered: int = 0
    connections: int = 0
    answer_unit: int | None = None  # answer with this unit id (a gateway's habit)
    writes: list[bytes] = field(default_factory=list)  # the PDUs of write requests (6, 16)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readexactly(6)
                length = int.from_bytes(head[4:6], "big")
                rest = await reader.readexactly(length)
                if rest[1:2] in (b"\x06", b"\x10"):
                    self.writes.append(rest[1:])
                out = answer(self.holding, head + rest, self.answer_unit)
                if out is not None:
                    self.answered += 1
                    writer.write(out)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return  # the master hung up: a slave just waits for the next connection
        finally:
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        if not self.port:
            self.port = free_port(self.host)
        self._server = await asyncio.start_server(self._client, self.host, self.port)

    def set(self, unit: int, register: int, value: int) -> None:
        self.holding[unit][register] = value

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None
