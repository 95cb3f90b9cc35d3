"""SL 651-2014 hydrology telemetry frames, HEX/BCD and ASCII modes (pure codec, no IO).

HEX/BCD frame (tables 20–23): `7E 7E` · centre (1) · station (5, BCD) · password (2) ·
function (1) · direction and length (2: high nibble 0 up / 8 down, low 12 bits) · `02` STX,
or `16` SYN + packet total/sequence (3: high 12 bits total, low 12 bits sequence) · body ·
end character (`03` ETX, `17` ETB, …) · CRC-16 (the Modbus arithmetic, high byte first).
A downlink frame carries the station address before the centre address. The ASCII mode
(tables 16–19, frames starting with `01` SOH) is in `ascii.py`; `take` reads both.

The length is the number of bytes after the start character and before the end character
(tables 20 and 22): for a SYN frame it counts the 3 packet bytes as well.

`take(buf)` is the stream codec (see drivers/link/framing.py); `decode_frame(data)` decodes one
frame and raises `Sl651Error` with the byte offset of what is wrong. Times in frames are the
station's local time (`tz`, Beijing time by default).

Observation times (6.6.2.8, tables 30, 36, 45 and their notes): the time before a group of
equally spaced values is the time of its FIRST value. The twelve values of an `F4`–`FC`
array are at obs + 5·k min (k = 0…11); after an all-zero time step `04 18 000000` (table C.1
note g) the array's groups repeat, one group per hour; after a non-zero step the element's
values repeat to the end of the body, value k at obs + k·step. Stations that stamp the END
of the hour instead are read with `restamp(frame, "end")` (a per-station setting).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from drivers.link.framing import Reject, RejectKind, crc16
from drivers.sl651 import elements as tables
from gateway.core.errors import FrameError

SYNC = b"\x7e\x7e"
SOH = 0x01
HEADER_LEN = 14  # 7E7E, centre, station, password, function, length, start char
STX, SYN = 0x02, 0x16
ETX, ETB, ENQ, EOT, ACK, NAK, ESC = 0x03, 0x17, 0x05, 0x04, 0x06, 0x15, 0x1B
END_NAMES = {ETX: "ETX", ETB: "ETB", ENQ: "ENQ", EOT: "EOT", ACK: "ACK", NAK: "NAK", ESC: "ESC"}
BEIJING = ZoneInfo("Asia/Shanghai")
MAX_BODY = 0xFFF
FUNCTIONS = tables.FUNCTIONS
REPORTS = frozenset({0x30, 0x31, 0x32, 0x33, 0x34, 0x37, 0x38, 0x3A, 0x44})
"""Functions whose body is serial · time · F1F1 station+type · F0F0 obs time · elements."""
STATION_ONLY = frozenset({0x47, 0x48, 0x4A, 0x51})
"""Replies whose body is serial · time · F1F1 station address (tables 62, 64, 68, 86)."""
TIME_STEP = 0x04
DURATION = 0x05
STATUS = 0x45  # ZT: a 4-byte HEX bit field, not BCD
FIVE_MIN = 300_000
HOUR = 3_600_000
ArrayTime = Literal["first", "end"]


class Sl651Error(FrameError):
    """A frame that cannot be decoded; `offset` is the byte where the problem is."""


@dataclass(frozen=True, slots=True)
class Element:
    name: str  # SL 651 symbol (PT, Z, …) or the identifier in hex for unnamed ones
    code: str  # identifier in hex: "26", "FF09"
    value: float | None  # None: the station sent "no value"
    ts: int  # observation time, UTC milliseconds
    unit: str | None
    offset: int  # byte offset of the identifier in the frame
    index: int | None = None  # position inside a 5-minute array group (0…11)


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
    ascii: bool = False

    @property
    def function_name(self) -> str:
        if self.function in FUNCTIONS:
            return FUNCTIONS[self.function]
        if self.function >= 0xE0:
            return "用户自定义扩展功能码"
        return "保留功能码"


@dataclass(frozen=True, slots=True)
class Frame:
    header: Header
    raw: bytes
    body: bytes
    serial: int | None = None
    sent_at: int | None = None  # UTC ms
    station_type: int | None = None
    elements: tuple[Element, ...] = ()
    text: str | None = None  # manual entry (35, 39) or software version (45)
    notes: tuple[str, ...] = field(default=())
    fields: tuple[tuple[str, str], ...] = ()  # function-specific values, named in Chinese
    picture: bytes | None = None  # function 36: the JPEG
    variants: tuple[str, ...] = ()  # accepted departures from the standard
    observed_at: int | None = None  # first observation time (pictures, replies)


# --- low-level field decoding ----------------------------------------------------------


def _bcd(data: bytes, offset: int) -> int:
    n = 0
    for i, b in enumerate(data):
        hi, lo = b >> 4, b & 0x0F
        if hi > 9 or lo > 9:
            raise Sl651Error(f"byte {b:02X} is not BCD", offset + i)
        n = n * 100 + hi * 10 + lo
    return n


def local_ms(parts: list[int], offset: int, tz: tzinfo, what: str) -> int:
    parts = parts + [0] * (6 - len(parts))
    y, mo, d, h, mi, s = parts
    try:
        t = datetime(2000 + y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError as e:
        raise Sl651Error(f"invalid time {what}: {e}", offset) from None
    return int(t.timestamp()) * 1000


def _time(data: bytes, offset: int, tz: tzinfo) -> int:
    """YYMMDDhh[mm[ss]] BCD in local time -> UTC milliseconds."""
    parts = [_bcd(data[i : i + 1], offset + i) for i in range(len(data))]
    return local_ms(parts, offset, tz, data.hex().upper())


def _value(data: bytes, decimals: int, offset: int) -> float | None:
    """BCD value; a first byte FF marks a negative (6.6.3.3 a); all-FF or all-AA: no value."""
    if all(b == 0xFF for b in data) or all(b == 0xAA for b in data):
        return None
    sign = 1
    if data[0] == 0xFF:
        sign, data, offset = -1, data[1:], offset + 1  # "FF0…" for odd digit counts
    return sign * _bcd(data, offset) / float(10**decimals)


def duration_hours(hh: int, mm: int, offset: int) -> float:
    """DT (05) is HH.mm (E.1.2.3): hours and minutes, not a decimal number of hours."""
    if mm > 59:
        raise Sl651Error(f"duration DT {hh:02d}.{mm:02d}: minutes above 59", offset)
    return hh + mm / 60


def _code(ident: bytes) -> str:
    return ident.hex().upper()


def _name(ident: bytes) -> tuple[str, str | None]:
    if len(ident) == 1 and ident[0] in tables.ELEMENTS:
        spec = tables.ELEMENTS[ident[0]]
        return spec.symbol, spec.unit
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
    """Total length of the frame at buf[0] from its header; None if the header is short.

    The header's length counts what lies between the start and the end character, so for
    a SYN frame the 3 packet bytes are inside it (table 22)."""
    if len(buf) < HEADER_LEN:
        return None
    return HEADER_LEN + (((buf[11] & 0x0F) << 8) | buf[12]) + 3


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
    check_packet(header, 14)
    return header


def check_packet(header: Header, offset: int) -> None:
    if header.start == SYN and header.length < (6 if header.ascii else 3):
        raise Sl651Error(
            f"SYN frame of length {header.length} has no room for the packet total/sequence",
            offset,
        )
    if header.packet is not None and not 1 <= header.packet[1] <= header.packet[0]:
        raise Sl651Error(f"packet {header.packet[1]} of {header.packet[0]} is impossible", offset)


def parse(raw: bytes, tz: tzinfo = BEIJING) -> Frame:
    """Decode a frame whose length, end character and CRC are known good."""
    if raw[:1] == bytes([SOH]):
        from drivers.sl651 import ascii as ascii_mode

        return ascii_mode.parse(raw, tz)
    header = _check(raw)
    if header.packet is not None:
        body = raw[HEADER_LEN + 3 : HEADER_LEN + header.length]
        total, seq = header.packet
        if header.downlink:  # the centre's M3 answer about one packet: decoded on its own
            return body_frame(header, raw, body, HEADER_LEN + 3, tz)
        return Frame(
            header, raw, body, notes=(f"packet {seq} of {total}; body decoded once joined",)
        )
    body = raw[HEADER_LEN : HEADER_LEN + header.length]
    return body_frame(header, raw, body, HEADER_LEN, tz)


def body_frame(header: Header, raw: bytes, body: bytes, base: int, tz: tzinfo) -> Frame:
    """Decode a HEX/BCD body (a single frame's, or the joined body of a multi-packet one)."""
    if header.downlink:
        from drivers.sl651.downlink import downlink_body

        return downlink_body(header, raw, body, base, tz)
    if len(body) < 8:
        if header.function == 0x2F and not body:
            return Frame(header, raw, body)
        raise Sl651Error(f"body of {len(body)} bytes is shorter than serial and time (8)", base)
    serial = int.from_bytes(body[0:2], "big")
    sent = _time(body[2:8], base + 2, tz)
    f = header.function
    out = Frame(header, raw, body, serial, sent)
    if f == 0x2F:
        if len(body) > 8:
            return replace(out, notes=(f"{len(body) - 8} bytes after the keep-alive's time",))
        return out
    if f in (0x35, 0x39):
        return _manual(out, base)
    if f in REPORTS:
        return _report(out, base, tz)
    if f == 0x36:
        return _picture(out, base, tz)
    from drivers.sl651.replies import reply_body

    return reply_body(out, base)


def station_id(frame: Frame, at: int, base: int) -> tuple[int, tuple[str, ...]]:
    """Check `F1 F1` + address at body[at]; return the index after it and any variant."""
    body, header = frame.body, frame.header
    variants: tuple[str, ...] = ()
    guide = body[at : at + 2]
    if guide == b"\xf1\x28":  # identifier F1 with a definition byte of 5 bytes
        variants = ("F1 28 in place of F1 F1 (station address identifier)",)
    elif guide != b"\xf1\xf1":
        raise Sl651Error("expected F1 F1 (station address) in the body", base + at)
    if len(body) < at + 7:
        raise Sl651Error("body ends inside the station address", base + len(body))
    address = _code(body[at + 2 : at + 7])
    if address != header.station:
        raise Sl651Error(
            f"station address in the body {address} differs from the header's {header.station}",
            base + at + 2,
        )
    return at + 7, variants


def _manual(frame: Frame, base: int) -> Frame:
    """35 (and the reply to 39): `F2 F2` then the manual data in its own encoding (table 38).

    The standard allows SL 330 codes or any agreed format (6.6.4.8), so the text is kept as
    it came; name/value pairs of the element table also become readings."""
    body = frame.body
    if body[8:10] != b"\xf2\xf2":
        raise Sl651Error("manual entry must start with F2 F2 (RGZS)", base + 8)
    return manual_text(frame, body[10:], base + 10)


def manual_text(frame: Frame, data: bytes, at: int) -> Frame:
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise Sl651Error(f"manual entry is not text: {e.reason}", at + e.start) from None
    tokens = text.split()
    pairs = list(zip(tokens[::2], tokens[1::2], strict=False))
    elements: list[Element] = []
    if tokens and len(tokens) % 2 == 0 and all(n in tables.BY_SYMBOL for n, _ in pairs):
        try:
            values = [float(v) for _, v in pairs]
        except ValueError:
            values = []
        for (name, _), v in zip(pairs, values, strict=False):
            unit = tables.ELEMENTS[tables.BY_SYMBOL[name]].unit
            elements.append(Element(name, name, v, frame.sent_at or 0, unit, at))
    notes = () if elements else ("manual entry kept as text (no element/value pairs)",)
    return replace(frame, elements=tuple(elements), text=text, notes=notes)


def _obs(body: bytes, i: int, at: int, tz: tzinfo) -> tuple[int, str | None]:
    """An observation-time group at body[i] (`F0 F0` or the variant `F0 28`)."""
    variant = None
    if body[i + 1] == 0x28:
        variant = "F0 28 in place of F0 F0 (observation time identifier)"
    if i + 7 > len(body):
        raise Sl651Error("body ends inside an observation time (F0 F0)", at)
    return _time(body[i + 2 : i + 7], at + 2, tz), variant


def _picture(frame: Frame, base: int, tz: tzinfo) -> Frame:
    """36 (table 40): station · type · obs time · `F3 F3` · the JPEG."""
    body = frame.body
    i, variants = station_id(frame, 8, base)
    if i >= len(body):
        raise Sl651Error("station type missing", base + i)
    station_type = body[i]
    i += 1
    if body[i : i + 1] != b"\xf0" or i + 1 >= len(body):
        raise Sl651Error("expected F0 F0 (observation time) before the picture", base + i)
    obs, v = _obs(body, i, base + i, tz)
    variants += (v,) if v else ()
    i += 7
    if body[i : i + 2] != b"\xf3\xf3":
        raise Sl651Error("expected F3 F3 (PIC) before the picture data", base + i)
    jpeg = body[i + 2 :]
    notes: tuple[str, ...] = ()
    if not jpeg.startswith(b"\xff\xd8"):
        notes = ("picture data does not start with the JPEG marker FF D8",)
    return replace(
        frame,
        station_type=station_type,
        picture=jpeg,
        observed_at=obs,
        variants=variants,
        notes=notes,
        fields=(("图片字节数", str(len(jpeg))),),
    )


def _array(
    code: int, ident: bytes, definition: int, body: bytes, j: int, at: int, t0: int, hourly: bool
) -> tuple[list[Element], int]:
    """An F4–FC array: 1-byte (DRP, 0.1 mm) or 2-byte (DRZn, 0.01 m) HEX values, FF… none.

    Value k of group g is at t0 + g hours + 5·k minutes; groups repeat only after an
    all-zero time step (`hourly`)."""
    width, scale = (1, 10) if code == 0xF4 else (2, 100)
    size = 12 * width  # fixed by table C.1 (12 or 24 bytes HEX), whatever the definition says
    n = len(body)
    if j + size > n:
        raise Sl651Error(f"{_code(ident)} array needs {size} bytes, {n - j} left", at)
    name, unit = tables.array_value_name(code), tables.ELEMENTS[code].unit
    out: list[Element] = []
    g = 0
    while True:
        for k in range(size // width):
            cell = body[j + k * width : j + (k + 1) * width]
            v = None if all(b == 0xFF for b in cell) else int.from_bytes(cell, "big") / scale
            out.append(Element(name, _code(ident), v, t0 + g * HOUR + k * FIVE_MIN, unit, at, k))
        j += size
        g += 1
        if not hourly or j >= n:
            return out, j
        if j + size > n:
            raise Sl651Error(
                f"{n - j} bytes left after {g} hourly groups of {_code(ident)}", at + 2 + g * size
            )


def _report(frame: Frame, base: int, tz: tzinfo) -> Frame:
    body = frame.body
    i, variants = station_id(frame, 8, base)
    if i >= len(body):
        raise Sl651Error("station type missing", base + i)
    station_type = body[i]
    i += 1
    obs: int | None = None
    first_obs: int | None = None
    step_ms: int | None = None
    elements: list[Element] = []
    fields: list[tuple[str, str]] = []
    n = len(body)
    while i < n:
        at = base + i
        ident = body[i : i + 1]
        if ident[0] == 0xF0 and i + 1 < n and body[i + 1] in (0xF0, 0x28):
            obs, v = _obs(body, i, at, tz)
            first_obs = obs if first_obs is None else first_obs
            if v and v not in variants:
                variants += (v,)
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
        if code is not None and code in tables.ARRAYS:
            want = 0x60 if code == 0xF4 else 0xC0
            if definition != want:
                v = f"{_code(ident)} {definition:02X} in place of {_code(ident)} {want:02X}"
                variants += (
                    ()
                    if f"{v} (array definition byte)" in variants
                    else (f"{v} (array definition byte)",)
                )
            found, i = _array(code, ident, definition, body, j, at, obs, step_ms == 0)
            elements.extend(found)
            if step_ms == 0:
                step_ms = None
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
            if size != 3:
                raise Sl651Error(f"time step 04 must have 3 bytes (DDHHmm), not {size}", at + 1)
            dd, hh, mm = (_bcd(data[k : k + 1], base + j + k) for k in range(3))
            step_ms = ((dd * 24 + hh) * 60 + mm) * 60_000
            fields.append(("时间步长", f"{dd}日{hh}时{mm}分" if step_ms else "000000 (逐小时组)"))
            i = j + size
            continue
        name, unit = _name(ident)
        if step_ms:  # uniform-interval: this element's values repeat to the end
            k = 0
            while j + size <= n:
                x = _value(body[j : j + size], decimals, base + j)
                elements.append(Element(name, _code(ident), x, obs + k * step_ms, unit, at))
                j += size
                k += 1
            if j != n:
                raise Sl651Error(f"{n - j} bytes left after the uniform-interval values", base + j)
            i = n
            continue
        if step_ms == 0:
            raise Sl651Error(
                f"an all-zero time step must be followed by DRP/DRZ arrays (table C.1 note g), "
                f"not {_code(ident)}",
                at,
            )
        value: float | None
        if code == STATUS:
            bits = int.from_bytes(data, "big")
            value = float(bits)
            fields.append(("状态及报警", tables.status_text(bits)))
        elif code == DURATION:
            value = _duration(data, decimals, base + j)
        else:
            value = _value(data, decimals, base + j)
        elements.append(Element(name, _code(ident), value, obs, unit, at))
        i = j + size
    notes: list[str] = []
    arrays = [e for e in elements if e.index is not None]
    if arrays and frame.sent_at is not None and max(e.ts for e in arrays) > frame.sent_at:
        notes.append(
            "5-minute values after the send time: this station stamps the end of the "
            'hour (set array_time = "end" for it)'
        )
    return replace(
        frame,
        station_type=station_type,
        elements=tuple(elements),
        fields=tuple(fields),
        variants=variants,
        observed_at=first_obs,
        notes=tuple(notes),
    )


def _duration(data: bytes, decimals: int, offset: int) -> float | None:
    raw = _value(data, decimals, offset)
    if raw is None:
        return None
    if decimals == 0:
        return raw  # whole hours (E.1.2.3: "可只列小时数")
    scaled = round(raw * 10**decimals)
    hh, mm = divmod(scaled, 10 ** (decimals))
    if decimals != 2:
        raise Sl651Error(f"duration DT with {decimals} decimals is not HH.mm", offset)
    return duration_hours(hh, mm, offset)


def restamp(frame: Frame, array_time: ArrayTime) -> Frame:
    """Array values of a station that stamps the END of the hour: shift them 55 minutes back."""
    if array_time == "first" or not any(e.index is not None for e in frame.elements):
        return frame
    shifted = tuple(
        replace(e, ts=e.ts - 11 * FIVE_MIN) if e.index is not None else e for e in frame.elements
    )
    return replace(frame, elements=shifted, notes=(*frame.notes, "array times: end of the hour"))


# --- stream codec and single-frame decoder ---------------------------------------------


def _complete_and_valid(buf: bytes) -> bool:
    if buf[:1] == bytes([SOH]):
        from drivers.sl651 import ascii as ascii_mode

        return ascii_mode.complete_and_valid(buf)
    total = frame_length(buf)
    if total is None or len(buf) < total or _plausible(buf) is not None:
        return False
    raw = buf[:total]
    return raw[-3] in END_NAMES and crc16(raw[:-2]) == int.from_bytes(raw[-2:], "big")


def station_of(buf: bytes) -> str | None:
    if buf[:1] == bytes([SOH]):
        from drivers.sl651 import ascii as ascii_mode

        return ascii_mode.station_of(buf)
    if len(buf) < HEADER_LEN or _plausible(buf) is not None:
        return None
    return _code(buf[2:7]) if buf[11] >> 4 == 8 else _code(buf[3:8])


def _next_start(buf: bytes, after: int) -> int:
    """Offset of the next 7E 7E or plausible SOH header after `after`, or -1."""
    from drivers.sl651 import ascii as ascii_mode

    j = buf.find(SYNC, after)
    k = ascii_mode.find_start(buf, after)
    return min((x for x in (j, k) if x >= 0), default=-1)


def _skip_to_sync(buf: bytes, limit: int) -> int:
    """Bytes to drop: up to the next frame start after offset 0 (within limit), else limit."""
    j = _next_start(buf, 1)
    return j if 0 < j <= limit else limit


def take(buf: bytes, tz: tzinfo = BEIJING) -> tuple[int, Frame | Reject | None]:
    """Stream codec: see drivers/link/framing.py. Never raises on any input."""
    from drivers.sl651 import ascii as ascii_mode

    n = len(buf)
    i = _next_start(buf, 0)
    if i < 0:
        keep = 1 if buf.endswith(b"\x7e") else ascii_mode.partial_tail(buf)
        drop = n - keep
        if drop <= 0:
            return 0, None
        reason = f"{drop} bytes without a 7E 7E or 01 SOH start"
        return drop, Reject("garbage", reason, 0, buf[:drop])
    if i > 0:
        what = "7E 7E" if buf[i] == 0x7E else "01 SOH"
        return i, Reject("garbage", f"{i} bytes before a {what} start", 0, buf[:i])
    if buf[0] == SOH:
        return ascii_mode.take(buf, tz)
    if n < HEADER_LEN:
        return 0, None
    why = _plausible(buf)
    if why is not None:
        drop = _next_start(buf, 1)
        if drop < 0:
            drop = n - 1 if buf.endswith(b"\x7e") else n
        return drop, Reject("garbage", f"7E 7E without a frame header: {why}", 0, buf[:drop])
    total = frame_length(buf)
    assert total is not None
    return finish(buf, total, parse, tz)


def finish(buf: bytes, total: int, parser: object, tz: tzinfo) -> tuple[int, Frame | Reject | None]:
    """Common tail of `take` for both modes: wait, give up a truncated frame, or parse."""
    assert callable(parser)
    n = len(buf)
    if n < total:
        # wait for the rest, unless a whole valid frame already starts later in the buffer
        j = _next_start(buf, 1)
        while j > 0:
            if _complete_and_valid(buf[j:]):
                return j, Reject(
                    "truncated",
                    f"frame cut off after {j} of {total} bytes; a new frame starts",
                    0,
                    buf[:j],
                    station_of(buf),
                )
            j = _next_start(buf, j + 1)
        return 0, None
    raw = buf[:total]
    try:
        frame = parser(raw, tz)
        assert isinstance(frame, Frame)
        return total, frame
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
    if data[:1] == bytes([SOH]):
        from drivers.sl651 import ascii as ascii_mode

        return ascii_mode.decode_frame(data, tz)
    if not data.startswith(SYNC):
        at = data.find(SYNC)
        hint = f"; a 7E 7E start is at offset {at}" if at > 0 else ""
        raise Sl651Error(f"a frame starts with 7E 7E (HEX) or 01 SOH (ASCII){hint}", 0)
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


# --- encoding ----------------------------------------------------------------------------


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
    """Build a HEX/BCD frame (the stubs' uplink frames and the gateway's downlink)."""
    addr = bytes.fromhex(station)
    if len(addr) != 5:
        raise ValueError(f"station address {station!r} is not 10 hex digits")
    length = len(body) + (3 if packet is not None else 0)
    if length > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    head = SYNC + (addr + bytes([centre]) if downlink else bytes([centre]) + addr)
    head += bytes.fromhex(password) + bytes([function])
    head += ((0x8000 if downlink else 0) | length).to_bytes(2, "big")
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


def confirmation(
    frame: Frame,
    now_ms: int,
    tz: tzinfo = BEIJING,
    end: int = EOT,
    packet: tuple[int, int] | None = None,
) -> bytes:
    """The centre's reply to an uplink frame: same function, its serial, the centre's time.

    `packet` makes it an M3 reply (table 23): SYN, the message's packet total and the
    sequence number the reply is about (NAK: the bad packet; EOT/ESC: the last one)."""
    h = frame.header
    serial = (frame.serial or 0).to_bytes(2, "big")
    if h.ascii:
        from drivers.sl651 import ascii as ascii_mode

        return ascii_mode.encode(
            centre=h.centre,
            station=h.station,
            password=h.password,
            function=h.function,
            body=f"{frame.serial or 0:04X}".encode() + ascii_mode.text_time(now_ms, tz),
            downlink=True,
            end=end,
            packet=packet,
        )
    return encode(
        centre=h.centre,
        station=h.station,
        password=h.password,
        function=h.function,
        body=serial + bcd_time(now_ms, tz),
        downlink=True,
        end=end,
        packet=packet,
    )


from drivers.sl651.packets import Reassembler  # noqa: E402  (re-exported for the drivers)

__all__ = ["Element", "Frame", "Header", "Reassembler", "Sl651Error", "decode_frame", "take"]
