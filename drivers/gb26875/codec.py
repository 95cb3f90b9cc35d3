"""GB/T 26875.3 user information transmission frames (fire-alarm panels), pure codec.

`@@` · serial (2, LE) · version (2) · time (6: s m h D M Y, binary) · source (6) ·
destination (6) · data length (2, LE) · command (1) · application data · checksum (1:
byte sum mod 256 from serial through application data) · `##`.

Application data: information type (1), object count (1), objects. Decoded types:
1 system state (10 bytes an object), 2 component status (46 bytes), 21 transmission
device state (7 bytes); other types are kept raw with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from drivers.link.framing import Reject, RejectKind
from gateway.core.errors import FrameError

START, END = b"@@", b"##"
HEADER_LEN = 27  # @@ + 25 bytes up to and with the command
MAX_DATA = 0x4000
LOCAL = ZoneInfo("Asia/Shanghai")
COMMANDS = {1: "control", 2: "send data", 3: "confirm", 4: "request", 5: "response", 6: "deny"}
# state bits shared by system state and component status
STATE_BITS = {
    0: "normal",
    1: "fire_alarm",
    2: "fault",
    3: "disabled",
    4: "supervisory",
    5: "started",
    6: "feedback",
    7: "delayed",
    8: "main_power_fault",
    9: "backup_power_fault",
    10: "bus_fault",
    11: "manual",
}


class Gb26875Error(FrameError):
    """A frame that cannot be decoded: `reason`, and `offset` where in its bytes."""


@dataclass(frozen=True, slots=True)
class Status:
    """One object of a system-state (1) or component-status (2) report."""

    info_type: int
    system_type: int
    system_address: int
    component_type: int | None
    component_address: int | None
    state: int
    description: str
    ts: int  # UTC ms

    @property
    def flags(self) -> list[str]:
        return [name for bit, name in STATE_BITS.items() if self.state >> bit & 1]

    @property
    def fire_alarm(self) -> bool:
        return bool(self.state & 0b10)

    @property
    def name(self) -> str:
        if self.component_address is None:
            return f"system {self.system_type}/{self.system_address}"
        return (
            f"system {self.system_type}/{self.system_address} component "
            f"{self.component_type}/{self.component_address}"
        )


@dataclass(frozen=True, slots=True)
class Frame:
    serial: int
    version: tuple[int, int]
    sent_at: int
    source: str
    destination: str
    command: int
    info_type: int | None
    statuses: tuple[Status, ...]
    raw: bytes
    notes: tuple[str, ...] = field(default=())


def _time(b: bytes, offset: int, tz: tzinfo) -> int:
    s, mi, h, d, mo, y = b
    try:
        t = datetime(2000 + y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError as e:
        raise Gb26875Error(f"invalid time {b.hex().upper()}: {e}", offset) from None
    return int(t.timestamp()) * 1000


def _length(buf: bytes) -> int:
    return 30 + int.from_bytes(buf[24:26], "little")


def parse(raw: bytes, tz: tzinfo = LOCAL) -> Frame:
    """Decode a frame whose start, end, length and checksum are known good."""
    data = raw[27:-3]
    serial = int.from_bytes(raw[2:4], "little")
    sent = _time(raw[6:12], 6, tz)
    src, dst = raw[12:18].hex().upper(), raw[18:24].hex().upper()
    command = raw[26]
    if not data:
        return Frame(serial, (raw[4], raw[5]), sent, src, dst, command, None, (), raw)
    info_type = data[0]
    if len(data) < 2:
        raise Gb26875Error("application data ends before the object count", 28)
    count = data[1]
    sizes = {1: 10, 2: 46, 21: 7}
    size = sizes.get(info_type)
    if size is None:
        note = f"information type {info_type}: objects not decoded"
        return Frame(serial, (raw[4], raw[5]), sent, src, dst, command, info_type, (), raw, (note,))
    if len(data) != 2 + count * size:
        raise Gb26875Error(
            f"{count} objects of type {info_type} need {2 + count * size} bytes "
            f"of application data, the frame has {len(data)}",
            27,
        )
    out: list[Status] = []
    for k in range(count):
        at = 2 + k * size
        o = data[at : at + size]
        base = 27 + at
        if info_type == 1:
            out.append(
                Status(
                    1,
                    o[0],
                    o[1],
                    None,
                    None,
                    int.from_bytes(o[2:4], "little"),
                    "",
                    _time(o[4:10], base + 4, tz),
                )
            )
        elif info_type == 2:
            desc = o[9:40].split(b"\x00", 1)[0].decode("gb18030", errors="replace")
            out.append(
                Status(
                    2,
                    o[0],
                    o[1],
                    o[2],
                    int.from_bytes(o[3:7], "little"),
                    int.from_bytes(o[7:9], "little"),
                    desc,
                    _time(o[40:46], base + 40, tz),
                )
            )
        else:
            out.append(Status(21, 0, 0, None, None, o[0], "", _time(o[1:7], base + 1, tz)))
    return Frame(serial, (raw[4], raw[5]), sent, src, dst, command, info_type, tuple(out), raw)


def _check(raw: bytes) -> None:
    if raw[-2:] != END:
        raise Gb26875Error(
            "no ## where the data length says the frame ends", len(raw) - 2, "truncated"
        )
    want = sum(raw[2:-3]) & 0xFF
    if raw[-3] != want:
        raise Gb26875Error(
            f"checksum mismatch: frame says {raw[-3]:02X}, bytes give {want:02X}",
            len(raw) - 3,
            "crc",
        )
    if raw[26] not in COMMANDS:
        raise Gb26875Error(f"command {raw[26]} is not 1…6", 26)


def decode_frame(data: bytes, tz: tzinfo = LOCAL) -> tuple[Frame, bytes]:
    if not data.startswith(START):
        raise Gb26875Error("a frame starts with @@", 0)
    if len(data) < HEADER_LEN:
        raise Gb26875Error(
            f"{len(data)} bytes are shorter than a header ({HEADER_LEN})", len(data), "truncated"
        )
    total = _length(data)
    if len(data) < total:
        raise Gb26875Error(
            f"frame truncated: the data length gives {total} bytes, {len(data)} present",
            len(data),
            "truncated",
        )
    _check(data[:total])
    return parse(data[:total], tz), data[total:]


def _whole(buf: bytes) -> bool:
    """Does a complete, valid frame start at buf[0]?"""
    try:
        _check(buf[: _length(buf)])
    except Gb26875Error:
        return False
    return True


def take(buf: bytes, tz: tzinfo = LOCAL) -> tuple[int, Frame | Reject | None]:
    i = buf.find(START)
    if i < 0:
        drop = len(buf) - 1 if buf.endswith(b"@") else len(buf)
        if drop <= 0:
            return 0, None
        return drop, Reject("garbage", f"{drop} bytes without an @@ start", 0, buf[:drop])
    if i > 0:
        return i, Reject("garbage", f"{i} bytes before an @@ start", 0, buf[:i])
    if len(buf) < HEADER_LEN:
        return 0, None
    total = _length(buf)
    if total - 30 > MAX_DATA:
        return 1, Reject("garbage", f"@@ with an impossible data length {total - 30}", 0, buf[:1])
    if len(buf) < total:
        j = buf.find(START, 1)
        while j > 0:
            tail = buf[j:]
            if len(tail) >= HEADER_LEN and len(tail) >= _length(tail) and _whole(tail):
                return j, Reject(
                    "truncated", f"frame cut off after {j} of {total} bytes", 0, buf[:j]
                )
            j = buf.find(START, j + 1)
        return 0, None
    raw = buf[:total]
    try:
        _check(raw)
        return total, parse(raw, tz)
    except Gb26875Error as e:
        reason = f"{e.reason} (byte {e.offset} of the frame)"
        if e.kind == "malformed" and e.offset != 26:
            return total, Reject("malformed", reason, 0, raw)
        j = buf.find(START, 1, total)
        drop = j if j > 0 else total
        kind: RejectKind = "crc" if e.kind == "crc" else "truncated"
        return drop, Reject(kind, reason, 0, buf[:drop])


def encode(
    *,
    serial: int,
    sent_at: int,
    source: str,
    destination: str,
    command: int,
    data: bytes = b"",
    version: tuple[int, int] = (1, 0),
    tz: tzinfo = LOCAL,
) -> bytes:
    t = datetime.fromtimestamp(sent_at / 1000, tz)
    body = (
        serial.to_bytes(2, "little")
        + bytes(version)
        + bytes([t.second, t.minute, t.hour, t.day, t.month, t.year - 2000])
        + bytes.fromhex(source)
        + bytes.fromhex(destination)
        + len(data).to_bytes(2, "little")
        + bytes([command])
        + data
    )
    return START + body + bytes([sum(body) & 0xFF]) + END


def confirm(frame: Frame, now_ms: int, tz: tzinfo = LOCAL) -> bytes:
    """The centre's confirm (command 3) of a received frame: same serial, addresses swapped."""
    return encode(
        serial=frame.serial,
        sent_at=now_ms,
        source=frame.destination,
        destination=frame.source,
        command=3,
        version=frame.version,
        tz=tz,
    )
