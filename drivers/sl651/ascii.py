"""SL 651-2014 ASCII mode (6.4, tables 16–19; body rules 6.6.2).

Frame: `01` SOH · centre (2 hex chars) · station (10) · password (4) · function (2) ·
direction and length (4 hex chars: first `0` up / `8` down, then 3 for the length) · `02`
STX or `16` SYN + packet total and sequence (6: 3 + 3 characters) · body · end character ·
CRC-16 as 4 hex characters (the same arithmetic as HEX mode, over every byte before it).
A downlink frame carries the station before the centre. The length counts the characters
after the start character and before the end character (with a SYN frame's 6 packet
characters). Packet numbers run 1…4095 (12 bits, as in HEX mode), so the 3 characters are
read as hexadecimal digits ("原编码采用HEX码", table 18).

Body: serial (4 hex chars) and send time (12 digits) without separators, then
"identifier value " groups separated by spaces (6.6.2.1): `ST` address type-character ·
`TT` YYMMDDhhmm · symbols of table C.1 with decimal numbers; `DRxnn` (x = D/H/N) the time
step, after which the listed symbols' values follow in groups, `M` for a missing value;
`DRP`/`DRZn` arrays as hexadecimal text; `ZT` 8 hex characters; manual data (`RGZS`) and
pictures (`PIC`) in their original encoding.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, tzinfo

from drivers.link.framing import Reject, crc16
from drivers.sl651 import codec
from drivers.sl651 import elements as tables
from drivers.sl651.codec import (
    BEIJING,
    END_NAMES,
    ETX,
    FIVE_MIN,
    HOUR,
    MAX_BODY,
    SOH,
    STX,
    SYN,
    Element,
    Frame,
    Header,
    Sl651Error,
    local_ms,
)

HEADER = 24  # SOH, centre 2, station 10, password 4, function 2, length 4, start 1
HEX = frozenset(b"0123456789ABCDEFabcdef")
TYPES = {ch: code for code, (ch, _) in tables.STATION_TYPES.items()}
STEP = re.compile(r"DR([DHN])(\d\d)")
TOKEN = re.compile(rb"\S+")


def _plausible(buf: bytes) -> str | None:
    if not all(b in HEX for b in buf[1:23]):
        bad = next(k for k in range(1, 23) if buf[k] not in HEX)
        return f"ASCII header character {buf[bad]:02X} at {bad} is not a hex digit"
    if buf[19:20] not in (b"0", b"8"):
        return f"direction character {buf[19:20]!r} is neither 0 (up) nor 8 (down)"
    if buf[23] not in (STX, SYN):
        return f"start character {buf[23]:02X} is neither 02 (STX) nor 16 (SYN)"
    return None


def find_start(buf: bytes, after: int) -> int:
    """Offset of the next SOH that begins a plausible ASCII header (or could), else -1."""
    k = buf.find(bytes([SOH]), after)
    while k >= 0:
        head = buf[k : k + HEADER]
        if len(head) < HEADER:
            if all(b in HEX for b in head[1:23]):
                return k
        elif _plausible(head) is None:
            return k
        k = buf.find(bytes([SOH]), k + 1)
    return -1


def partial_tail(buf: bytes) -> int:
    """How many bytes at the end of buf might be the start of an ASCII header."""
    k = buf.rfind(bytes([SOH]), max(0, len(buf) - HEADER))
    if k >= 0 and all(b in HEX for b in buf[k + 1 : k + 23]):
        return len(buf) - k
    return 0


def frame_length(buf: bytes) -> int | None:
    if len(buf) < HEADER:
        return None
    return HEADER + (int(buf[19:23], 16) & 0xFFF) + 1 + 4


def _header(raw: bytes) -> Header:
    downlink = raw[19:20] == b"8"
    if downlink:
        station, centre = raw[1:11].decode(), int(raw[11:13], 16)
    else:
        centre, station = int(raw[1:3], 16), raw[3:13].decode()
    packet = None
    if raw[23] == SYN:
        if not all(b in HEX for b in raw[24:30]):
            raise Sl651Error("packet total/sequence are not 6 hex characters", 24)
        packet = (int(raw[24:27], 16), int(raw[27:30], 16))
    return Header(
        centre=centre,
        station=station.upper(),
        password=raw[13:17].decode().upper(),
        function=int(raw[17:19], 16),
        downlink=downlink,
        length=int(raw[19:23], 16) & 0xFFF,
        start=raw[23],
        packet=packet,
        end=raw[-5],
        crc=int(raw[-4:], 16) if all(b in HEX for b in raw[-4:]) else -1,
        ascii=True,
    )


def _check(raw: bytes) -> Header:
    if (why := _plausible(raw)) is not None:
        raise Sl651Error(why, 19 if "direction" in why else 23 if "start" in why else 1)
    end = raw[-5]
    if end not in END_NAMES:
        raise Sl651Error(
            f"end character {end:02X} after the length the header gives is not one of "
            "03 17 05 04 06 15 1B (length wrong or frame truncated)",
            len(raw) - 5,
            "truncated",
        )
    if not all(b in HEX for b in raw[-4:]):
        raise Sl651Error("CRC is not 4 hex characters", len(raw) - 4, "crc")
    want, got = crc16(raw[:-4]), int(raw[-4:], 16)
    if want != got:
        raise Sl651Error(
            f"CRC mismatch: frame says {got:04X}, bytes give {want:04X}", len(raw) - 4, "crc"
        )
    header = _header(raw)
    codec.check_packet(header, 24)
    return header


def parse(raw: bytes, tz: tzinfo = BEIJING) -> Frame:
    header = _check(raw)
    if header.packet is not None:
        total, seq = header.packet
        body = raw[HEADER + 6 : HEADER + header.length]
        if header.downlink:  # the centre's M3 answer about one packet: decoded on its own
            return body_frame(header, raw, body, HEADER + 6, tz)
        return Frame(
            header, raw, body, notes=(f"packet {seq} of {total}; body decoded once joined",)
        )
    return body_frame(header, raw, raw[HEADER : HEADER + header.length], HEADER, tz)


def _digits(text: bytes, at: int, what: str) -> list[int]:
    if not text.isdigit() or len(text) % 2:
        raise Sl651Error(f"{what} {text!r} is not pairs of decimal digits", at)
    return [int(text[k : k + 2]) for k in range(0, len(text), 2)]


def _time(text: bytes, at: int, tz: tzinfo, n: int, what: str) -> int:
    if len(text) != n:
        raise Sl651Error(f"{what} {text!r} is not {n} digits", at)
    return local_ms(_digits(text, at, what), at, tz, text.decode())


def body_frame(header: Header, raw: bytes, body: bytes, base: int, tz: tzinfo) -> Frame:
    if len(body) < 16:
        if header.function == 0x2F and not body:
            return Frame(header, raw, body)
        raise Sl651Error(f"body of {len(body)} characters is shorter than serial and time", base)
    if not all(b in HEX for b in body[:4]):
        raise Sl651Error(f"serial {body[:4]!r} is not 4 hex characters", base)
    serial = int(body[:4], 16)
    sent = _time(body[4:16], base + 4, tz, 12, "send time")
    frame = Frame(header, raw, body, serial, sent)
    rest, at = body[16:], base + 16
    f = header.function
    if header.downlink:
        text = rest.decode("ascii", errors="replace").strip()
        return replace(frame, fields=(("命令参数", text),) if text else ())
    if f == 0x2F:
        return frame
    if f in (0x35, 0x39):
        stripped = rest.lstrip(b" ")
        if not stripped.startswith(b"RGZS"):
            raise Sl651Error("manual entry must start with RGZS", at + len(rest) - len(stripped))
        skip = len(rest) - len(stripped) + 4
        data = rest[skip:]
        if data.startswith(b" "):
            data, skip = data[1:], skip + 1
        return codec.manual_text(frame, data.rstrip(b" "), at + skip)
    picture = None
    if f == 0x36:
        k = rest.find(b" PIC ")
        if k < 0:
            raise Sl651Error("picture report without PIC", at)
        rest, picture = rest[: k + 1], rest[k + 5 :]
    tokens = [
        (m.group().decode("ascii", errors="replace"), at + m.start()) for m in TOKEN.finditer(rest)
    ]
    if any(b >= 0x80 for b in rest):
        bad = next(k for k, b in enumerate(rest) if b >= 0x80)
        raise Sl651Error("non-ASCII byte in an ASCII-mode body", at + bad)
    if f in codec.REPORTS or f == 0x36:
        out = _report(frame, tokens, tz, at)
        if picture is not None:
            out = replace(out, picture=picture, fields=(("图片字节数", str(len(picture))),))
        return out
    return _reply(frame, tokens, at)


def _station(frame: Frame, tokens: list[tuple[str, int]], at: int) -> int:
    if len(tokens) < 2 or tokens[0][0] != "ST":
        raise Sl651Error("expected ST and the station address", tokens[0][1] if tokens else at)
    address, where = tokens[1]
    if address.upper() != frame.header.station:
        raise Sl651Error(
            f"station address in the body {address} differs from the header's "
            f"{frame.header.station}",
            where,
        )
    return 2


def _number(text: str, where: int, symbol: str) -> float | None:
    if text == "M":
        return None
    try:
        return float(text)
    except ValueError:
        raise Sl651Error(f"value {text!r} of {symbol} is not a number", where) from None


def _element_value(symbol: str, text: str, where: int) -> float | None:
    code = tables.BY_SYMBOL[symbol]
    if code == codec.STATUS:
        if len(text) != 8 or not all(c in "0123456789ABCDEFabcdef" for c in text):
            raise Sl651Error(f"ZT {text!r} is not 8 hex characters", where)
        return float(int(text, 16))
    if code == codec.DURATION and text != "M":
        hh, _, mm = text.partition(".")
        if not hh.isdigit() or (mm and not mm.isdigit()):
            raise Sl651Error(f"duration DT {text!r} is not HH.mm", where)
        return codec.duration_hours(int(hh), int(mm or 0), where)
    return _number(text, where, symbol)


def _array(symbol: str, text: str, where: int, t0: int) -> list[Element]:
    code = tables.BY_SYMBOL[symbol]
    width = 2 if code == 0xF4 else 4
    if len(text) != 12 * width or not all(c in "0123456789ABCDEFabcdef" for c in text):
        raise Sl651Error(f"{symbol} needs {12 * width} hex characters, got {text!r}", where)
    scale = 10 if code == 0xF4 else 100
    name, unit = tables.array_value_name(code), tables.ELEMENTS[code].unit
    out = []
    for k in range(12):
        cell = text[k * width : (k + 1) * width].upper()
        v = None if set(cell) == {"F"} else int(cell, 16) / scale
        out.append(Element(name, f"{code:02X}", v, t0 + k * FIVE_MIN, unit, where, k))
    return out


def _report(frame: Frame, tokens: list[tuple[str, int]], tz: tzinfo, at: int) -> Frame:
    i = _station(frame, tokens, at)
    if i >= len(tokens) or tokens[i][0] not in TYPES:
        where = tokens[i][1] if i < len(tokens) else at
        raise Sl651Error("station type character (table A.1) missing or unknown", where)
    station_type = TYPES[tokens[i][0]]
    i += 1
    obs: int | None = None
    first: int | None = None
    elements: list[Element] = []
    fields: list[tuple[str, str]] = []
    n = len(tokens)
    while i < n:
        tok, where = tokens[i]
        if tok == "TT":
            if i + 1 >= n:
                raise Sl651Error("TT without an observation time", where)
            obs = _time(tokens[i + 1][0].encode(), tokens[i + 1][1], tz, 10, "observation time")
            first = obs if first is None else first
            i += 2
            continue
        if obs is None:
            raise Sl651Error(f"{tok} before any observation time (TT)", where)
        step = STEP.fullmatch(tok)
        if step:
            unit, nn = step.group(1), int(step.group(2))
            step_ms = nn * {"D": 24 * HOUR, "H": HOUR, "N": 60_000}[unit]
            fields.append(("时间步长", tok))
            i = _groups(tokens, i + 1, obs, step_ms, elements, tok)
            continue
        if tok not in tables.BY_SYMBOL:
            raise Sl651Error(f"unknown element identifier {tok!r} (table C.1)", where)
        if i + 1 >= n:
            raise Sl651Error(f"{tok} has no value", where)
        value, vwhere = tokens[i + 1]
        code = tables.BY_SYMBOL[tok]
        if code in tables.ARRAYS:
            elements.extend(_array(tok, value, vwhere, obs))
        else:
            unit = tables.ELEMENTS[code].unit
            v = _element_value(tok, value, vwhere)
            if code == codec.STATUS and v is not None:
                fields.append(("状态及报警", tables.status_text(int(v))))
            elements.append(Element(tok, f"{code:02X}", v, obs, unit, where))
        i += 2
    return replace(
        frame,
        station_type=station_type,
        elements=tuple(elements),
        fields=tuple(fields),
        observed_at=first,
    )


def _groups(
    tokens: list[tuple[str, int]],
    i: int,
    obs: int,
    step_ms: int,
    out: list[Element],
    step_token: str,
) -> int:
    """After DRxnn: the listed symbols, then their values group by group to the end (6.6.4.4).

    With an all-zero step (DRH00, table C.1 note g) the symbols are DRP/DRZ arrays and each
    group is one hour of twelve 5-minute values."""
    symbols: list[tuple[str, int]] = []
    while i < len(tokens) and tokens[i][0] in tables.BY_SYMBOL:
        symbols.append(tokens[i])
        i += 1
    if not symbols:
        raise Sl651Error(f"{step_token} is not followed by element identifiers", tokens[i - 1][1])
    if step_ms == 0 and any(tables.BY_SYMBOL[s] not in tables.ARRAYS for s, _ in symbols):
        raise Sl651Error(
            f"{step_token} (all zero) must be followed by DRP/DRZ arrays (table C.1 note g)",
            symbols[0][1],
        )
    data = tokens[i:]
    if len(data) % len(symbols):
        raise Sl651Error(
            f"{len(data)} values do not fill groups of {len(symbols)} "
            f"({' '.join(s for s, _ in symbols)})",
            data[-1][1] if data else tokens[i - 1][1],
        )
    for g in range(len(data) // len(symbols)):
        for (symbol, where), (text, vwhere) in zip(
            symbols, data[g * len(symbols) : (g + 1) * len(symbols)], strict=True
        ):
            code = tables.BY_SYMBOL[symbol]
            if step_ms == 0:
                out.extend(_array(symbol, text, vwhere, obs + g * HOUR))
            else:
                v = _element_value(symbol, text, vwhere)
                unit = tables.ELEMENTS[code].unit
                out.append(Element(symbol, f"{code:02X}", v, obs + g * step_ms, unit, where))
    return len(tokens)


def _reply(frame: Frame, tokens: list[tuple[str, int]], at: int) -> Frame:
    f = frame.header.function
    if f not in tables.FUNCTIONS:
        note = f"function {f:02X} ({frame.header.function_name}) is not defined by SL 651-2014"
        return replace(frame, notes=(note,), fields=(("正文", " ".join(t for t, _ in tokens)),))
    i = _station(frame, tokens, at)
    rest = tokens[i:]
    fields: list[tuple[str, str]] = []
    text = None
    if f in (0x40, 0x41, 0x42, 0x43):
        names = tables.PARAMETERS if f in (0x40, 0x41) else tables.RUNNING
        if len(rest) % 2:
            raise Sl651Error("parameters are not identifier/value pairs", rest[-1][1])
        for (ident, where), (value, _) in zip(rest[::2], rest[1::2], strict=True):
            try:
                code = int(ident, 16)
            except ValueError:
                raise Sl651Error(f"parameter identifier {ident!r} is not hex", where) from None
            fields.append((f"{code:02X} {names.get(code, f'参数{code:02X}')}", value))
    elif f == 0x45:
        words = [t for t, _ in rest]
        if len(words) >= 2 and words[0].isdigit() and int(words[0]) == len(" ".join(words[1:])):
            words = words[1:]
        text = " ".join(words)
        fields.append(("软件版本", text))
    elif f in (0x46, 0x4B):
        if len(rest) != 2 or rest[0][0] != "ZT":
            raise Sl651Error(
                "expected ZT and 8 hex characters (table 58)", rest[0][1] if rest else at
            )
        bits = int(_element_value("ZT", rest[1][0], rest[1][1]) or 0)
        fields += [("状态字", f"{bits:08X}"), ("状态及报警", tables.status_text(bits))]
    elif rest:
        fields.append(("正文", " ".join(t for t, _ in rest)))
    return replace(frame, fields=tuple(fields), text=text)


# --- stream and single frame ---------------------------------------------------------------


def complete_and_valid(buf: bytes) -> bool:
    total = frame_length(buf)
    if total is None or len(buf) < total or _plausible(buf) is not None:
        return False
    raw = buf[:total]
    return (
        raw[-5] in END_NAMES
        and all(b in HEX for b in raw[-4:])
        and crc16(raw[:-4]) == int(raw[-4:], 16)
    )


def station_of(buf: bytes) -> str | None:
    if len(buf) < HEADER or _plausible(buf) is not None:
        return None
    return (buf[1:11] if buf[19:20] == b"8" else buf[3:13]).decode().upper()


def take(buf: bytes, tz: tzinfo) -> tuple[int, Frame | Reject | None]:
    n = len(buf)
    if n < HEADER:
        if all(b in HEX for b in buf[1:n]):
            return 0, None
        drop = codec._skip_to_sync(buf, n)
        return drop, Reject("garbage", "01 SOH without an ASCII frame header", 0, buf[:drop])
    why = _plausible(buf)
    if why is not None:
        drop = codec._skip_to_sync(buf, n)
        return drop, Reject("garbage", f"01 SOH without a frame header: {why}", 0, buf[:drop])
    total = frame_length(buf)
    assert total is not None
    return codec.finish(buf, total, parse, tz)


def decode_frame(data: bytes, tz: tzinfo = BEIJING) -> tuple[Frame, bytes]:
    if len(data) < HEADER:
        raise Sl651Error(
            f"{len(data)} bytes are shorter than an ASCII header ({HEADER})", len(data)
        )
    if (why := _plausible(data)) is not None:
        raise Sl651Error(why, 19 if "direction" in why else 23 if "start" in why else 1)
    total = frame_length(data)
    assert total is not None
    if len(data) < total:
        raise Sl651Error(
            f"frame truncated: the header's length gives {total} bytes, {len(data)} present",
            len(data),
            "truncated",
        )
    return parse(data[:total], tz), data[total:]


def text_time(ms: int, tz: tzinfo, fields: int = 6) -> bytes:
    t = datetime.fromtimestamp(ms / 1000, tz)
    parts = (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)[:fields]
    return "".join(f"{p:02d}" for p in parts).encode()


def encode(
    *,
    centre: int,
    station: str,
    password: str,
    function: int,
    body: bytes,
    downlink: bool = False,
    end: int = ETX,
    packet: tuple[int, int] | None = None,
) -> bytes:
    """Build an ASCII-mode frame."""
    if len(station) != 10 or not all(c in "0123456789ABCDEFabcdef" for c in station):
        raise ValueError(f"station address {station!r} is not 10 hex digits")
    length = len(body) + (6 if packet is not None else 0)
    if length > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    addr = station.upper() + f"{centre:02X}" if downlink else f"{centre:02X}" + station.upper()
    head = bytes([SOH]) + addr.encode() + password.upper().encode() + f"{function:02X}".encode()
    head += f"{(0x8000 if downlink else 0) | length:04X}".encode()
    if packet is None:
        head += bytes([STX])
    else:
        head += bytes([SYN]) + f"{packet[0]:03X}{packet[1]:03X}".encode()
    frame = head + body + bytes([end])
    return frame + f"{crc16(frame):04X}".encode()
