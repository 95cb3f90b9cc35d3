"""Modbus writes (pure): `register.write` to a register the device's map marks writable.

Function 6 (write single register) for 16-bit entries, 16 (write multiple registers) for
32-bit ones or when `function=16` is asked (some devices take only 16). The value is given
in the metric's unit and turned into the register's raw words with the entry's own scale,
offset, type and word order (the inverse of the read); it is checked against the entry's
`min`/`max` and against what the type can hold before anything is queued.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from drivers.link.commands import Command, CommandError, only, unknown
from drivers.link.config import TransportModel
from drivers.modbus.config import ModbusRtuTransport, ModbusTcpTransport, Register

__all__ = ["COMMANDS", "Command", "CommandError", "Write", "check", "plan"]

COMMANDS: dict[str, Command] = {
    "register.write": Command(
        "register.write",
        6,
        "写寄存器",
        "metric=NAME (or address=N) value=V [function=6|16]",
    )
}
RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


@dataclass(frozen=True, slots=True)
class Write:
    function: int  # 6 or 16
    address: int
    words: tuple[int, ...]  # the raw register words, in the order sent
    register: Register  # the map entry
    value: float  # in the metric's unit


def _entry(args: dict[str, str], t: ModbusRtuTransport | ModbusTcpTransport) -> Register:
    if "metric" in args and "address" in args:
        raise CommandError("register.write: give metric=… or address=…, not both")
    if "metric" in args:
        found = [r for r in t.registers if r.metric == args["metric"]]
        what = f"metric {args['metric']!r}"
    elif "address" in args:
        try:
            address = int(args["address"], 0)
        except ValueError:
            raise CommandError(
                f"register.write: address={args['address']!r} is not a number"
            ) from None
        found = [r for r in t.registers if r.address == address and r.function == 3]
        what = f"holding register {address}"
    else:
        raise CommandError("register.write: give metric=NAME or address=N of the register map")
    if not found:
        known = ", ".join(f"{r.metric} ({r.address})" for r in t.registers if r.writable)
        raise CommandError(
            f"register.write: {what} is not in the device's register map "
            f"(writable: {known or 'none'})"
        )
    reg = found[0]
    if not reg.writable:
        raise CommandError(
            f"register.write: {reg.metric} (register {reg.address}) is not writable "
            "(writable = true in its register map entry)"
        )
    return reg


def _words(reg: Register, value: float) -> tuple[int, ...]:
    raw = (value - reg.offset) / reg.scale
    if reg.type == "float32":
        if not math.isfinite(raw) or abs(raw) > 3.4028234663852886e38:
            raise CommandError(f"register.write: {value:g} does not fit a float32 register")
        (bits,) = struct.unpack(">I", struct.pack(">f", raw))
        n = bits
    else:
        n = round(raw)
        if not math.isclose(n, raw, abs_tol=1e-6):
            raise CommandError(
                f"register.write: {value:g} is not a whole number of steps of {reg.scale:g} "
                f"(register {reg.address}, {reg.type})"
            )
        low, high = RANGES[reg.type]
        if not low <= n <= high:
            raise CommandError(
                f"register.write: {value:g} gives raw {n}, outside {reg.type} {low}…{high}"
            )
        if n < 0:
            n += 2 ** (16 * reg.count)
    if reg.count == 1:
        return (n,)
    hi, lo = n >> 16, n & 0xFFFF
    return (hi, lo) if reg.word_order == "big" else (lo, hi)


def plan(name: str, args: dict[str, str], transport: TransportModel) -> Write:
    """What to write for a checked command; CommandError naming what is wrong."""
    if name not in COMMANDS:
        raise unknown("Modbus", name, COMMANDS)
    if not isinstance(transport, ModbusRtuTransport | ModbusTcpTransport):
        raise CommandError(f"{name}: not a Modbus device")
    if isinstance(transport, ModbusRtuTransport) and transport.dtu is not None:
        raise CommandError(
            f"{name}: writes to a Modbus device behind a 4G DTU ({transport.dtu}) are not "
            "sent; only devices on a serial port or Modbus TCP take them"
        )
    only(name, args, {"metric", "address", "value", "function"})
    reg = _entry(args, transport)
    raw = args.get("value")
    if raw is None:
        raise CommandError("register.write: value=… is missing")
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(f"register.write: value={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise CommandError(f"register.write: value={raw!r} is not a number")
    if reg.min is not None and value < reg.min:
        raise CommandError(f"register.write: {reg.metric} = {raw} is below its min {reg.min:g}")
    if reg.max is not None and value > reg.max:
        raise CommandError(f"register.write: {reg.metric} = {raw} is above its max {reg.max:g}")
    function = args.get("function", "16" if reg.count == 2 else "6")
    if function not in ("6", "16"):
        raise CommandError(f"register.write: function={function!r} is not 6 or 16")
    if function == "6" and reg.count == 2:
        raise CommandError(
            f"register.write: {reg.metric} is {reg.type} (2 registers): function 6 writes one"
        )
    return Write(int(function), reg.address, _words(reg, value), reg, value)


def check(name: str, args: dict[str, str], transport: TransportModel, now_ms: int) -> None:
    plan(name, args, transport)
