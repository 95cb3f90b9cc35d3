"""SL 651-2014 hydrology telemetry frames, HEX/BCD mode (pure codec, no IO).

Frame: `7E 7E` · centre (1) · station (5, BCD) · password (2) · function (1) · direction
and body length (2: high nibble 0 up / 8 down, low 12 bits length) · `02` STX, or `16` SYN
+ packet total/sequence (3) · body · end character (`03` ETX, `17` ETB, …) · CRC-16 (the
Modbus arithmetic, transmitted high byte first). A downlink frame carries the station
address before the centre address.

`take(buf)` is the stream codec (see drivers/link/framing.py); `decode_frame(data)` decodes one
frame and raises `Sl651Error` with the byte offset of what is wrong.

Conventions this module fixes (SL 651 leaves them to the reader):
* the body length of a SYN frame does not count the 3 packet total/sequence bytes;
* times in frames are the station's local time (`tz`, Beijing time by default);
* the twelve values of an `F4`/`F5` array are the 5-minute values of the hour that ends
  at the observation time: value k (0…11) is at obs − 55 min + 5·k min; `FF`/`FFFF` is
  "no value";
* after a time step `04` (DRxnn) the next element repeats its value to the end of the
  body, value k at obs + k·step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from drivers.link.framing import Reject, RejectKind, crc16
from gateway.core.errors import FrameError

SYNC = b"\x7e\x7e"
HEADER_LEN = 14  # 7E7E, centre, station, password, function, length, start char
STX, SYN = 0x02, 0x16
ETX, ETB, ENQ, EOT, ACK, NAK, ESC = 0x03, 0x17, 0x05, 0x04, 0x06, 0x15, 0x1B
END_NAMES = {ETX: "ETX", ETB: "ETB", ENQ: "ENQ", EOT: "EOT", ACK: "ACK", NAK: "NAK", ESC: "ESC"}
BEIJING = ZoneInfo("Asia/Shanghai")
MAX_BODY = 0xFFF

FUNCTIONS: dict[int, str] = {
    0x2F: "link keep-alive",
    0x30: "test report",
    0x31: "uniform-interval report",
    0x32: "timed report",
    0x33: "add report",
    0x34: "hourly report",
    0x35: "manual entry",
    0x36: "picture",
    0x37: "query real-time data",
    0x38: "query time-range data",
    0x3A: "query named element",
    0x45: "query software version",
    0x49: "change password",
    0x4A: "set clock",
    0x51: "query clock",
}
REPORTS = frozenset({0x30, 0x31, 0x32, 0x33, 0x34, 0x37, 0x38, 0x3A})
"""Functions whose body is serial · time · F1F1 station+type · F0F0 obs time · elements."""

# element identifier -> (name, unit); names as SL 651-2014 appendix C gives them
ELEMENTS: dict[int, tuple[str, str | None]] = {
    0x01: ("AC", "m²"),
    0x02: ("AI", "°C"),
    0x03: ("C", "°C"),
    0x05: ("DT", "h"),
    0x06: ("ED", "mm"),
    0x07: ("EJ", "mm"),
    0x08: ("FL", "hPa"),
    0x09: ("GH", "m"),
    0x0A: ("GN", None),
    0x0B: ("GS", None),
    0x0C: ("GT", None),
    0x0D: ("GTP", "°C"),
    0x0E: ("H", "m"),
    0x0F: ("HW", "m"),
    0x10: ("M10", "%"),
    0x11: ("M20", "%"),
    0x12: ("M30", "%"),
    0x13: ("M40", "%"),
    0x14: ("M50", "%"),
    0x15: ("M60", "%"),
    0x16: ("M80", "%"),
    0x17: ("M100", "%"),
    0x18: ("MST", "%"),
    0x19: ("NS", None),
    0x1A: ("P1", "mm"),
    0x1B: ("P2", "mm"),
    0x1C: ("P3", "mm"),
    0x1D: ("P6", "mm"),
    0x1E: ("P12", "mm"),
    0x1F: ("PD", "mm"),
    0x20: ("PJ", "mm"),
    0x21: ("PN01", "mm"),
    0x22: ("PN05", "mm"),
    0x23: ("PN10", "mm"),
    0x24: ("PN30", "mm"),
    0x25: ("PR", "mm"),
    0x26: ("PT", "mm"),
    0x27: ("Q", "m³/s"),
    0x30: ("QA", "m³/s"),
    0x31: ("QZ", "m³/s"),
    0x36: ("VA", "m/s"),
    0x37: ("VJ", "m/s"),
    0x38: ("VT", "V"),
    0x39: ("Z", "m"),
    0x3A: ("ZB", "m"),
    0x3B: ("ZU", "m"),
    0x45: ("ZT", None),
    0xF4: ("DRP", "mm"),
    0xF5: ("DRZ1", "m"),
}
ARRAY_NAMES = {0xF4: "PN05", 0xF5: "Z"}  # what each 5-minute array value is a value of
TIME_STEP = 0x04
STATUS = 0x45  # ZT: a 4-byte HEX bit field, not BCD


class Sl651Error(FrameError):
    """A frame that cannot be decoded; `offset` is the byte where the problem is."""


@dataclass(frozen=True, slots=True)
class Element:
    name: str  # SL 651 name (PT, Z, …) or the identifier in hex for unnamed ones
    code: str  # identifier in hex: "26", "FF09"
    value: float | None  # None: the station sent "no value"
    ts: int  # observation time, UTC milliseconds
    unit: str | None
    offset: int  # byte offset of the identifier in the frame


@dataclass(frozen=True, slots=True)
class Header:
    centre: int
    station: str  # 10 hex digits
    password: str
    function: int
    downlink: bool
    length: int
    start: int
    packet: tuple[int, int] | None  # (total, sequence) for SYN frames
    end: int
    crc: int

    @property
    def function_name(self) -> str:
        return FUNCTIONS.get(self.function, "unknown")


@dataclass(frozen=True, slots=True)
class Frame:
    header: Header
    raw: bytes
    body: bytes
    serial: int | None = None
    sent_at: int | None = None  # UTC ms
    station_type: int | None = None
    elements: tuple[Element, ...] = ()
    text: str | None = None  # manual entry (35) or software version (45)
    notes: tuple[str, ...] = field(default=())


# --- low-level field decoding ----------------------------------------------------------


def _bcd(data: bytes, offset: int) -> int:
    n = 0
    for i, b in enumerate(data):
        hi, lo = b >> 4, b & 0x0F
        if hi > 9 or lo > 9:
            raise Sl651Error(f"byte {b:02X} is not BCD", offset + i)
        n = n * 100 + hi * 10 + lo
    return n


def _time(data: bytes, offset: int, tz: tzinfo) -> int:
    """YYMMDDhh[mm[ss]] BCD in local time -> UTC milliseconds."""
    parts = [_bcd(data[i : i + 1], offset + i) for i in range(len(data))]
    parts += [0] * (6 - len(parts))
    y, mo, d, h, mi, s = parts
    try:
        t = datetime(2000 + y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError as e:
        raise Sl651Error(f"invalid time {data.hex().upper()}: {e}", offset) from None
    return int(t.timestamp()) * 1000


def _value(data: bytes, decimals: int, offset: int) -> float | None:
    if all(b == 0xFF for b in data) or all(b == 0xAA for b in data):
        return None
    sign = 1
    if data[0] == 0xFF:
        sign, data, offset = -1, data[1:], offset + 1
    return sign * _bcd(data, offset) / float(10**decimals)


def _code(ident: bytes) -> str:
    return ident.hex().upper()


def _name(ident: bytes) -> tuple[str, str | None]:
    if len(ident) == 1 and ident[0] in ELEMENTS:
        return ELEMENTS[ident[0]]
    return _code(ident), None


# --- header and frame ------------------------------------------------------------------


def _plausible(buf: bytes) -> str | None:
    """Why the header at buf[0:HEADER_LEN] cannot start a frame, or None if it can."""
    direction = buf[11] >> 4
    if direction not in (0, 8):
        return f"direction nibble {direction:X} is neither 0 (up) nor 8 (down)"
    if buf[13] not in (STX, SYN):
        return f"start character {buf[13]:02X} is neither 02 (STX) nor 16 (SYN)"
    return None


def frame_length(buf: bytes) -> int | None:
    """Total length of the frame at buf[0] from its header; None if the header is short."""
    if len(buf) < HEADER_LEN:
        return None
    body = ((buf[11] & 0x0F) << 8) | buf[12]
    return HEADER_LEN + (3 if buf[13] == SYN else 0) + body + 3


def _header(raw: bytes) -> Header:
    downlink = raw[11] >> 4 == 8
    if downlink:
        station, centre = _code(raw[2:7]), raw[7]
    else:
        centre, station = raw[2], _code(raw[3:8])
    start = raw[13]
    packet = None
    if start == SYN:
        p = int.from_bytes(raw[14:17], "big")
        packet = (p >> 12, p & 0xFFF)
    return Header(
        centre=centre,
        station=station,
        password=_code(raw[8:10]),
        function=raw[10],
        downlink=downlink,
        length=((raw[11] & 0x0F) << 8) | raw[12],
        start=start,
        packet=packet,
        end=raw[-3],
        crc=int.from_bytes(raw[-2:], "big"),
    )


def _check(raw: bytes) -> Header:
    """Check a whole candidate frame (start, end character, CRC); raise Sl651Error."""
    if (why := _plausible(raw)) is not None:
        raise Sl651Error(why, 11 if "direction" in why else 13)
    end = raw[-3]
    if end not in END_NAMES:
        raise Sl651Error(
            f"end character {end:02X} after the body length the header gives is not one of "
            "03 17 05 04 06 15 1B (length wrong or frame truncated)",
            len(raw) - 3,
            "truncated",
        )
    want = crc16(raw[:-2])
    got = int.from_bytes(raw[-2:], "big")
    if want != got:
        raise Sl651Error(
            f"CRC mismatch: frame says {got:04X}, bytes give {want:04X}", len(raw) - 2, "crc"
        )
    header = _header(raw)
    if header.packet is not None and not 1 <= header.packet[1] <= header.packet[0]:
        raise Sl651Error(f"packet {header.packet[1]} of {header.packet[0]} is impossible", 14)
    return header


def parse(raw: bytes, tz: tzinfo = BEIJING) -> Frame:
    """Decode a frame whose length, end character and CRC are known good."""
    header = _check(raw)
    start = HEADER_LEN + (3 if header.packet else 0)
    body = raw[start : start + header.length]
    if header.packet is not None:
        # a packet of a multi-packet message carries only part of the body
        total, seq = header.packet
        return Frame(
            header, raw, body, notes=(f"packet {seq} of {total}; body decoded once joined",)
        )
    return _body(header, raw, body, start, tz)


def _body(header: Header, raw: bytes, body: bytes, base: int, tz: tzinfo) -> Frame:
    if header.downlink:
        if len(body) < 8:
            return Frame(header, raw, body, notes=("downlink frame: body not decoded",))
        serial = int.from_bytes(body[0:2], "big")
        sent = _time(body[2:8], base + 2, tz)
        note = "downlink frame: body after serial and time not decoded"
        return Frame(header, raw, body, serial, sent, notes=(note,) if len(body) > 8 else ())
    if len(body) < 8:
        if header.function == 0x2F and not body:
            return Frame(header, raw, body)
        raise Sl651Error(f"body of {len(body)} bytes is shorter than serial and time (8)", base)
    serial = int.from_bytes(body[0:2], "big")
    sent = _time(body[2:8], base + 2, tz)
    f = header.function
    if f == 0x2F:
        return Frame(header, raw, body, serial, sent)
    if f == 0x35:
        return _manual(header, raw, body, base, serial, sent)
    if f in REPORTS:
        return _report(header, raw, body, base, serial, sent, tz)
    if f == 0x45:
        return _version(header, raw, body, base, serial, sent)
    note = f"function {f:02X} ({header.function_name}): body after serial and time not decoded"
    return Frame(header, raw, body, serial, sent, notes=(note,))


def _station_id(header: Header, body: bytes, at: int, base: int) -> int:
    """Check `F1 F1` + address at body[at]; return the index after the address."""
    if body[at : at + 2] != b"\xf1\xf1":
        raise Sl651Error("expected F1 F1 (station address) in the body", base + at)
    if len(body) < at + 7:
        raise Sl651Error("body ends inside the station address", base + len(body))
    address = _code(body[at + 2 : at + 7])
    if address != header.station:
        raise Sl651Error(
            f"station address in the body {address} differs from the header's {header.station}",
            base + at + 2,
        )
    return at + 7


def _version(header: Header, raw: bytes, body: bytes, base: int, serial: int, sent: int) -> Frame:
    i = _station_id(header, body, 8, base)
    if i >= len(body):
        raise Sl651Error("software version missing", base + i)
    n = body[i]
    text = body[i + 1 : i + 1 + n]
    if len(text) != n:
        raise Sl651Error(f"software version says {n} bytes, {len(text)} present", base + i)
    return Frame(header, raw, body, serial, sent, text=text.decode("ascii", errors="replace"))


def _manual(header: Header, raw: bytes, body: bytes, base: int, serial: int, sent: int) -> Frame:
    if body[8:10] != b"\xf2\xf2":
        raise Sl651Error("manual entry must start with F2 F2", base + 8)
    text = body[10:].decode("ascii", errors="replace")
    tokens = text.split()
    elements = []
    if len(tokens) % 2:
        raise Sl651Error(f"manual entry {text!r} is not name/value pairs", base + 10)
    for name, value in zip(tokens[::2], tokens[1::2], strict=True):
        try:
            v = float(value)
        except ValueError:
            raise Sl651Error(
                f"manual entry value {value!r} of {name} is not a number", base + 10
            ) from None
        unit = next((u for n, u in ELEMENTS.values() if n == name), None)
        elements.append(Element(name, name, v, sent, unit, base + 10))
    return Frame(header, raw, body, serial, sent, elements=tuple(elements), text=text)


def _report(
    header: Header, raw: bytes, body: bytes, base: int, serial: int, sent: int, tz: tzinfo
) -> Frame:
    i = _station_id(header, body, 8, base)
    if i >= len(body):
        raise Sl651Error("station type missing", base + i)
    station_type = body[i]
    i += 1
    obs: int | None = None
    step_ms: int | None = None
    elements: list[Element] = []
    n = len(body)
    while i < n:
        at = base + i
        ident = body[i : i + 1]
        if ident[0] == 0xF0 and body[i + 1 : i + 2] == b"\xf0":
            if i + 7 > n:
                raise Sl651Error("body ends inside an observation time (F0 F0)", at)
            obs = _time(body[i + 2 : i + 7], at + 2, tz)
            i += 7
            continue
        if ident[0] == 0xFF:  # extended identifier: FF xx
            ident = body[i : i + 2]
            if len(ident) < 2:
                raise Sl651Error("body ends inside an extended identifier", at)
        j = i + len(ident)
        if j >= n:
            raise Sl651Error(f"element {_code(ident)} has no definition byte", at)
        if obs is None:
            raise Sl651Error(f"element {_code(ident)} before any observation time", at)
        definition = body[j]
        j += 1
        code = ident[0] if len(ident) == 1 else None
        if code in (0xF4, 0xF5):
            width = 1 if code == 0xF4 else 2
            if j + 12 * width > n:
                raise Sl651Error(f"{_code(ident)} array needs {12 * width} bytes", at)
            name = ARRAY_NAMES[code]
            unit = ELEMENTS[code][1]
            scale = 10 if code == 0xF4 else 100
            for k in range(12):
                cell = body[j + k * width : j + (k + 1) * width]
                v = None if all(b == 0xFF for b in cell) else int.from_bytes(cell, "big") / scale
                ts = obs - 55 * 60_000 + k * 300_000
                elements.append(Element(name, _code(ident), v, ts, unit, at))
            i = j + 12 * width
            continue
        size, decimals = definition >> 3, definition & 0x07
        if size == 0:
            raise Sl651Error(
                f"element {_code(ident)} definition {definition:02X} gives 0 bytes", at + 1
            )
        if j + size > n:
            raise Sl651Error(
                f"element {_code(ident)} needs {size} bytes, {n - j} left in the body", at
            )
        data = body[j : j + size]
        if code == TIME_STEP:
            dd, hh, mm = (_bcd(data[k : k + 1], base + j + k) for k in range(min(3, size)))
            step_ms = ((dd * 24 + hh) * 60 + mm) * 60_000
            i = j + size
            continue
        name, unit = _name(ident)
        if step_ms:  # uniform-interval: this element's values repeat to the end
            k = 0
            while j + size <= n:
                v = _value(body[j : j + size], decimals, base + j)
                elements.append(Element(name, _code(ident), v, obs + k * step_ms, unit, at))
                j += size
                k += 1
            if j != n:
                raise Sl651Error(f"{n - j} bytes left after the uniform-interval values", base + j)
            i = n
            continue
        if code == STATUS:
            value: float | None = float(int.from_bytes(data, "big"))
        else:
            value = _value(data, decimals, base + j)
        elements.append(Element(name, _code(ident), value, obs, unit, at))
        i = j + size
    return Frame(header, raw, body, serial, sent, station_type, tuple(elements))


# --- stream codec and single-frame decoder ---------------------------------------------


def _complete_and_valid(buf: bytes) -> bool:
    total = frame_length(buf)
    if total is None or len(buf) < total or _plausible(buf) is not None:
        return False
    raw = buf[:total]
    return raw[-3] in END_NAMES and crc16(raw[:-2]) == int.from_bytes(raw[-2:], "big")


def station_of(buf: bytes) -> str | None:
    if len(buf) < HEADER_LEN or _plausible(buf) is not None:
        return None
    return _code(buf[2:7]) if buf[11] >> 4 == 8 else _code(buf[3:8])


def _skip_to_sync(buf: bytes, limit: int) -> int:
    """Bytes to drop: up to the next 7E 7E after offset 0 (within limit), else limit."""
    j = buf.find(SYNC, 1, limit + 1)
    return j if j > 0 else limit


def take(buf: bytes, tz: tzinfo = BEIJING) -> tuple[int, Frame | Reject | None]:
    """Stream codec: see drivers/link/framing.py. Never raises on any input."""
    n = len(buf)
    i = buf.find(SYNC)
    if i < 0:
        drop = n - 1 if buf.endswith(b"\x7e") else n
        if drop <= 0:
            return 0, None
        return drop, Reject("garbage", f"{drop} bytes without a 7E 7E start", 0, buf[:drop])
    if i > 0:
        return i, Reject("garbage", f"{i} bytes before a 7E 7E start", 0, buf[:i])
    if n < HEADER_LEN:
        return 0, None
    why = _plausible(buf)
    if why is not None:
        drop = buf.find(SYNC, 1)
        if drop < 0:
            drop = n - 1 if buf.endswith(b"\x7e") else n
        return drop, Reject("garbage", f"7E 7E without a frame header: {why}", 0, buf[:drop])
    total = frame_length(buf)
    assert total is not None
    if n < total:
        # wait for the rest, unless a whole valid frame already starts later in the buffer
        j = buf.find(SYNC, 1)
        while j > 0:
            if _complete_and_valid(buf[j:]):
                return j, Reject(
                    "truncated",
                    f"frame cut off after {j} of {total} bytes; a new frame starts",
                    0,
                    buf[:j],
                    station_of(buf),
                )
            j = buf.find(SYNC, j + 1)
        return 0, None
    raw = buf[:total]
    try:
        return total, parse(raw, tz)
    except Sl651Error as e:
        station = station_of(buf)
        reason = f"{e.reason} (byte {e.offset} of the frame)"
        if e.kind == "malformed":
            return total, Reject("malformed", reason, 0, raw, station)
        drop = _skip_to_sync(buf, total)
        kind: RejectKind = "crc" if e.kind == "crc" else "truncated"
        return drop, Reject(kind, reason, 0, buf[:drop], station)


def decode_frame(data: bytes, tz: tzinfo = BEIJING) -> tuple[Frame, bytes]:
    """Decode exactly one frame at data[0]; return it and the bytes after it.

    The bytes after the frame's length and CRC are not guessed at: they are returned
    for the caller to report (on a byte stream they belong to whatever follows).
    """
    if not data.startswith(SYNC):
        at = data.find(SYNC)
        hint = f"; a 7E 7E start is at offset {at}" if at > 0 else ""
        raise Sl651Error(f"a frame starts with 7E 7E{hint}", 0)
    if len(data) < HEADER_LEN:
        raise Sl651Error(f"{len(data)} bytes are shorter than a header ({HEADER_LEN})", len(data))
    if (why := _plausible(data)) is not None:
        raise Sl651Error(why, 11 if "direction" in why else 13)
    total = frame_length(data)
    assert total is not None
    if len(data) < total:
        raise Sl651Error(
            f"frame truncated: the header's body length gives {total} bytes, {len(data)} present",
            len(data),
            "truncated",
        )
    return parse(data[:total], tz), data[total:]


# --- multi-packet reassembly and replies -----------------------------------------------


class Reassembler:
    """Joins SYN packets 1…N of one station and function into one frame (pure, in memory)."""

    def __init__(self, tz: tzinfo = BEIJING) -> None:
        self.tz = tz
        self._parts: dict[tuple[str, int], dict[int, Frame]] = {}

    def add(self, frame: Frame) -> Frame | None:
        """A single-packet frame comes straight back; a packet returns the whole when complete."""
        h = frame.header
        if h.packet is None:
            return frame
        total, seq = h.packet
        key = (h.station, h.function)
        parts = self._parts.setdefault(key, {})
        if seq == 1:
            parts.clear()
        parts[seq] = frame
        if len(parts) < total or any(s not in parts for s in range(1, total + 1)):
            return None
        del self._parts[key]
        body = b"".join(parts[s].body for s in range(1, total + 1))
        first = parts[1]
        base = HEADER_LEN + 3
        joined = _body(first.header, first.raw, body, base, self.tz)
        return Frame(
            joined.header,
            b"".join(parts[s].raw for s in range(1, total + 1)),
            body,
            joined.serial,
            joined.sent_at,
            joined.station_type,
            joined.elements,
            joined.text,
            (*joined.notes, f"reassembled from {total} packets"),
        )

    def pending(self) -> int:
        return sum(len(p) for p in self._parts.values())


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
    """Build a frame (the stubs' uplink frames and the gateway's replies)."""
    addr = bytes.fromhex(station)
    if len(addr) != 5:
        raise ValueError(f"station address {station!r} is not 10 hex digits")
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    head = SYNC + (addr + bytes([centre]) if downlink else bytes([centre]) + addr)
    head += bytes.fromhex(password) + bytes([function])
    head += ((0x8000 if downlink else 0) | len(body)).to_bytes(2, "big")
    if packet is None:
        head += bytes([STX])
    else:
        head += bytes([SYN]) + ((packet[0] << 12) | packet[1]).to_bytes(3, "big")
    frame = head + body + bytes([end])
    return frame + crc16(frame).to_bytes(2, "big")


def bcd_time(ms: int, tz: tzinfo, fields: int = 6) -> bytes:
    t = datetime.fromtimestamp(ms / 1000, tz)
    parts = (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)[:fields]
    return bytes((p // 10) << 4 | (p % 10) for p in parts)


def confirmation(frame: Frame, now_ms: int, tz: tzinfo = BEIJING, end: int = EOT) -> bytes:
    """The centre's reply to an uplink frame: same function, its serial, the centre's time."""
    h = frame.header
    serial = (frame.serial or 0).to_bytes(2, "big")
    return encode(
        centre=h.centre,
        station=h.station,
        password=h.password,
        function=h.function,
        body=serial + bcd_time(now_ms, tz),
        downlink=True,
        end=end,
    )
