"""Downlink bodies (centre -> station), HEX/BCD: what the gateway sends and a technician decodes.

Serial · send time, then per function (tables 44, 48, 50, 52, 65, 67, 69, 72, 75, 78, 80);
a confirmation carries only serial and time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, tzinfo

from drivers.sl651 import elements as tables
from drivers.sl651.codec import Frame, Header, Sl651Error, _bcd, _code, _time


def downlink_body(header: Header, raw: bytes, body: bytes, base: int, tz: tzinfo) -> Frame:
    if len(body) < 8:
        raise Sl651Error(
            f"downlink body of {len(body)} bytes is shorter than serial and time", base
        )
    serial = int.from_bytes(body[0:2], "big")
    sent = _time(body[2:8], base + 2, tz)
    frame = Frame(header, raw, body, serial, sent)
    rest = body[8:]
    if not rest:
        return frame
    f = header.function
    fields: list[tuple[str, str]] = []
    if f == 0x38 and len(rest) >= 13:
        start = _time(rest[0:4], base + 8, tz)
        end = _time(rest[4:8], base + 12, tz)
        if rest[8:10] != b"\x04\x18":
            raise Sl651Error("expected the time step 04 18 after the time range", base + 16)
        dd, hh, mm = (_bcd(rest[10 + k : 11 + k], base + 18 + k) for k in range(3))
        ident = _code(rest[13:14])
        fields += [
            ("起始时间", _iso(start, tz)),
            ("结束时间", _iso(end, tz)),
            ("时间步长", f"{dd}日{hh}时{mm}分"),
            ("要素", tables.ELEMENTS[rest[13]].symbol if rest[13] in tables.ELEMENTS else ident),
        ]
    elif f == 0x3A:
        fields.append(("要素", " ".join(_code(rest[k : k + 1]) for k in range(0, len(rest), 2))))
    else:
        fields.append(("命令参数", rest.hex().upper()))
    return replace(frame, fields=tuple(fields))


def _iso(ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")
