"""`stationgw decode PROTOCOL (HEX | -)`: one frame to JSON, for technicians.

Prints the header fields and a `readings` list (`element`, `value`, `unit`, `ts` in ISO
8601 UTC) and exits 0; a frame that cannot be decoded prints what is wrong and the byte
offset, and exits 2. Bytes after a whole frame are reported under `trailing`, never
guessed at.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo
from typing import Any

from drivers import cigem, gb26875, modbus_rtu, sl651
from drivers.hj212 import codec as hj212
from gateway.errors import PayloadError

PROTOCOLS = ("sl651", "modbus-rtu", "gb26875", "cigem", "hj212")
TEXT_PROTOCOLS = ("hj212",)  # given as the frame's text, not hex


class DecodeError(PayloadError):
    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"{reason} (byte offset {offset})")


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    for i, ch in enumerate(cleaned):
        if ch not in "0123456789abcdefABCDEF":
            raise DecodeError(f"{ch!r} is not a hex digit", i // 2)
    if len(cleaned) % 2:
        raise DecodeError("odd number of hex digits", len(cleaned) // 2)
    return bytes.fromhex(cleaned)


def _trailing(rest: bytes, offset: int) -> dict[str, Any] | None:
    if not rest:
        return None
    return {
        "offset": offset,
        "hex": rest.hex().upper(),
        "note": "bytes after the frame's length and check: not part of this frame, "
        "not decoded (on a stream they belong to what follows)",
    }


def decode(protocol: str, data: bytes, tz: tzinfo, now_ms: int | None = None) -> dict[str, Any]:
    """Decode one frame of `protocol`; raise DecodeError (reason, byte offset)."""
    try:
        if protocol == "sl651":
            return _sl651(data, tz)
        if protocol == "modbus-rtu":
            return _modbus(data, now_ms if now_ms is not None else int(time.time() * 1000))
        if protocol == "gb26875":
            return _gb26875(data, tz)
        if protocol == "cigem":
            return _cigem(data)
        if protocol == "hj212":
            return _hj212(data, tz)
    except (
        sl651.Sl651Error,
        modbus_rtu.ModbusFrameError,
        gb26875.Gb26875Error,
        cigem.CigemError,
        hj212.Hj212Error,
    ) as e:
        raise DecodeError(e.reason, e.offset) from None
    raise DecodeError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}", 0)


def _sl651(data: bytes, tz: tzinfo) -> dict[str, Any]:
    f, rest = sl651.decode_frame(data, tz)
    h = f.header
    return {
        "protocol": "sl651",
        "centre": h.centre,
        "station": h.station,
        "password": h.password,
        "function": f"{h.function:02X}",
        "function_name": h.function_name,
        "direction": "down" if h.downlink else "up",
        "length": h.length,
        "start": "SYN" if h.packet else "STX",
        "packet": {"total": h.packet[0], "sequence": h.packet[1]} if h.packet else None,
        "end": sl651.END_NAMES[h.end],
        "crc": f"{h.crc:04X}",
        "serial": f.serial,
        "sent_at": iso(f.sent_at),
        "station_type": f"{f.station_type:02X}" if f.station_type is not None else None,
        "text": f.text,
        "notes": list(f.notes),
        "trailing": _trailing(rest, len(f.raw)),
        "readings": [
            {"element": e.name, "code": e.code, "value": e.value, "unit": e.unit, "ts": iso(e.ts)}
            for e in f.elements
        ],
    }


def _modbus(data: bytes, now_ms: int) -> dict[str, Any]:
    f = modbus_rtu.decode_frame(data)
    readings = []
    if f.kind == "response" and f.function in (3, 4):
        readings = [
            {"element": f"register+{i}", "value": v, "unit": None, "ts": iso(now_ms)}
            for i, v in enumerate(f.registers)
        ]
    return {
        "protocol": "modbus-rtu",
        "unit": f.unit,
        "function": f.function,
        "function_name": f.function_name,
        "kind": f.kind,
        "address": f.address,
        "count": f.count,
        "exception": (
            {"code": f.exception, "name": modbus_rtu.EXCEPTIONS.get(f.exception, "unknown")}
            if f.exception is not None
            else None
        ),
        "crc": f"{int.from_bytes(data[-2:], 'little'):04X}",
        "notes": (
            [
                "register numbers are relative to the request's start address; ts is the "
                "time of decoding (RTU frames carry no time)"
            ]
            if readings
            else []
        ),
        "readings": readings,
    }


def _gb26875(data: bytes, tz: tzinfo) -> dict[str, Any]:
    f, rest = gb26875.decode_frame(data, tz)
    readings = []
    for s in f.statuses:
        readings.append(
            {
                "element": f"{s.name} state",
                "value": s.state,
                "unit": None,
                "ts": iso(s.ts),
                "flags": s.flags,
                "description": s.description,
            }
        )
    return {
        "protocol": "gb26875",
        "serial": f.serial,
        "version": f"{f.version[0]}.{f.version[1]}",
        "sent_at": iso(f.sent_at),
        "source": f.source,
        "destination": f.destination,
        "command": f.command,
        "command_name": gb26875.COMMANDS[f.command],
        "info_type": f.info_type,
        "fire_alarm": any(s.fire_alarm for s in f.statuses),
        "notes": list(f.notes),
        "trailing": _trailing(rest, len(f.raw)),
        "readings": readings,
    }


def _cigem(data: bytes) -> dict[str, Any]:
    m = cigem.decode(data)
    return {
        "protocol": "cigem",
        "type": m.type,
        "type_name": cigem.TYPES[m.type],
        "dev_id": m.dev_id,
        "notes": [] if m.type == 2 else ["plain JSON carries no time: ts is null"],
        "readings": [
            {"element": v.name, "value": v.value, "unit": v.unit, "ts": iso(v.ts)} for v in m.values
        ],
    }


# --- HJ 212 (issue 22) ----------------------------------------------------------------
def parse_text(text: str) -> bytes:
    """A text frame as pasted: surrounding blanks dropped, a literal `\\r\\n` accepted."""
    cleaned = text.strip().replace("\\r\\n", "\r\n")
    try:
        return cleaned.encode("ascii")
    except UnicodeEncodeError as e:
        raise DecodeError(f"{cleaned[e.start]!r} is not ASCII", e.start) from None


def _hj212(data: bytes, tz: tzinfo) -> dict[str, Any]:
    f, rest = hj212.decode_frame(data)
    values = hj212.readings(f, tz)
    return {
        "protocol": "hj212",
        "layout": f.layout,
        "qn": f.qn,
        "st": f.st,
        "cn": f.cn,
        "cn_name": hj212.COMMAND_NAMES.get(f.cn),
        "pw": f.pw,
        "mn": f.mn,
        "flag": f.flag,
        "reply_wanted": f.reply_wanted,
        "reply": hj212.data_answer(f).decode("ascii").rstrip("\r\n")
        if f.reply_wanted and f.qn is not None and f.cn in hj212.DATA_COMMANDS
        else None,
        "length": len(f.raw) - 12,
        "crc": f"{f.crc:04X}",
        "cp": dict(f.cp),
        "notes": [] if f.layout == "2017" else ["HJ/T 212-2005 layout: no QN, no Flag"],
        "trailing": _trailing(rest, len(f.raw)),
        "readings": [
            {
                "element": f"{code}-{suffix}",
                "value": value,
                "unit": None,
                "ts": iso(ts),
                "flag": flag,
                "flag_name": hj212.DATA_FLAGS.get(flag) if flag else None,
            }
            for code, suffix, value, ts, flag in values
        ],
    }
