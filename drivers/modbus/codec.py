"""Modbus RTU frames (pure codec): requests and responses, CRC-16 low byte first.

The gateway's master talks through pymodbus (drivers/modbus/master.py); this codec serves
the technician's `stationgw decode modbus-rtu` and frame checks in tests. An RTU frame
does not say whether it is a request or a response: the candidates the function code
allows are tried, and the one whose length and CRC fit is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.link.framing import Reject, crc16
from gateway.core.errors import FrameError

READS = {
    1: "read coils",
    2: "read discrete inputs",
    3: "read holding registers",
    4: "read input registers",
}
WRITES = {
    5: "write single coil",
    6: "write single register",
    15: "write multiple coils",
    16: "write multiple registers",
}
EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusFrameError(FrameError):
    """A frame that cannot be decoded: `reason`, and `offset` where in its bytes."""


@dataclass(frozen=True, slots=True)
class ModbusFrame:
    unit: int
    function: int
    kind: str  # "request", "response", "exception"
    address: int | None = None  # first register/coil of a request or a write
    count: int | None = None
    registers: tuple[int, ...] = ()
    exception: int | None = None
    raw: bytes = b""

    @property
    def function_name(self) -> str:
        f = self.function & 0x7F
        return READS.get(f) or WRITES.get(f) or f"function {f}"


def _lengths(buf: bytes) -> list[tuple[int, str]]:
    """Candidate (total length, kind) for the frame at buf[0], as far as buf tells."""
    if len(buf) < 2:
        return []
    f = buf[1]
    if f & 0x80:
        return [(5, "exception")]
    out: list[tuple[int, str]] = []
    if f in READS:
        out.append((8, "request"))
        if len(buf) >= 3:
            out.append((5 + buf[2], "response"))
    elif f in (5, 6):
        out.append((8, "request"))
    elif f in (15, 16):
        out.append((8, "response"))
        if len(buf) >= 7:
            out.append((9 + buf[6], "request"))
    return out


def _crc_ok(raw: bytes) -> bool:
    return len(raw) >= 4 and crc16(raw[:-2]) == int.from_bytes(raw[-2:], "little")


def _parse(raw: bytes, kind: str) -> ModbusFrame:
    unit, f = raw[0], raw[1]
    if kind == "exception":
        return ModbusFrame(unit, f, kind, exception=raw[2], raw=raw)
    if kind == "request":
        address = int.from_bytes(raw[2:4], "big")
        value = int.from_bytes(raw[4:6], "big")
        if f in (5, 6):
            return ModbusFrame(unit, f, kind, address, 1, (value,), raw=raw)
        regs: tuple[int, ...] = ()
        if f == 16:
            data = raw[7:-2]
            regs = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
        return ModbusFrame(unit, f, kind, address, value, regs, raw=raw)
    if f in (15, 16):
        address = int.from_bytes(raw[2:4], "big")
        return ModbusFrame(unit, f, kind, address, int.from_bytes(raw[4:6], "big"), raw=raw)
    data = raw[3:-2]
    if f in (3, 4):
        if len(data) % 2:
            raise ModbusFrameError(f"byte count {len(data)} is odd for registers", 2)
        regs = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
        return ModbusFrame(unit, f, kind, count=len(regs), registers=regs, raw=raw)
    return ModbusFrame(unit, f, kind, count=len(data) * 8, registers=tuple(data), raw=raw)


def decode_frame(data: bytes) -> ModbusFrame:
    """Decode exactly one frame; raise ModbusFrameError saying what and where."""
    if len(data) < 4:
        raise ModbusFrameError(f"{len(data)} bytes are too short for an RTU frame (4+)", len(data))
    if not 1 <= data[0] <= 247 and data[0] != 0:
        raise ModbusFrameError(f"unit address {data[0]} is outside 0…247", 0)
    f = data[1] & 0x7F
    if f not in READS and f not in WRITES:
        raise ModbusFrameError(f"function code {data[1]:02X} is not supported", 1)
    candidates = _lengths(data)
    fitting = [(n, k) for n, k in candidates if n == len(data)]
    if not fitting:
        want = " or ".join(str(n) for n, _ in candidates)
        raise ModbusFrameError(
            f"function {data[1]:02X} frames are {want} bytes long, got {len(data)}", len(data)
        )
    if not _crc_ok(data):
        got = int.from_bytes(data[-2:], "little")
        raise ModbusFrameError(
            f"CRC mismatch: frame says {got:04X}, bytes give {crc16(data[:-2]):04X}", len(data) - 2
        )
    # a register response has an even byte count; prefer it over a request reading
    kinds = [k for _, k in fitting]
    kind = (
        "response"
        if "response" in kinds and (data[1] not in (3, 4) or data[2] % 2 == 0)
        else kinds[0]
    )
    return _parse(data, kind)


def take(buf: bytes) -> tuple[int, ModbusFrame | Reject | None]:
    """Stream codec: the first candidate length whose CRC fits wins; else skip one byte."""
    candidates = _lengths(buf)
    if len(buf) < 2:
        return 0, None
    if not candidates:
        return 1, Reject("garbage", f"byte {buf[0]:02X} does not start a known frame", 0, buf[:1])
    waiting = False
    for n, kind in sorted(candidates):
        if len(buf) < n:
            waiting = True
            continue
        if _crc_ok(buf[:n]):
            try:
                return n, _parse(buf[:n], kind)
            except ModbusFrameError as e:
                return n, Reject("malformed", e.reason, e.offset, buf[:n])
    if waiting and len(buf) < 256:
        # RTU has no start mark: if a whole valid frame starts later, what is before it
        # is noise (on a line, the silence between frames would have said so)
        for j in range(1, len(buf) - 3):
            for n, _ in _lengths(buf[j:]):
                if j + n <= len(buf) and _crc_ok(buf[j : j + n]):
                    return j, Reject("garbage", f"{j} bytes before a valid frame", 0, buf[:j])
        return 0, None
    return 1, Reject("crc", "no frame length with a matching CRC starts here", 0, buf[:1])
