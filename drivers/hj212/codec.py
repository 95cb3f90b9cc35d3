"""HJ 212-2017 frames (pure codec): `take(buf) -> (consumed, Frame | Reject | None)`.

A frame is text: `##` · 4 decimal digits, the length of the data segment in bytes ·
the data segment · 4 hex digits, the CRC of the data segment (Annex A of the standard,
not CRC-16/Modbus) · CR LF (standard, clause 6.3.2). The data segment is
`QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;CP=&&…&&` (clause 6.3.3); devices still in the field
send the HJ/T 212-2005 layout without `QN` and `Flag` and with 17-digit times, which is
accepted (`layout = "2005"`).

The codec never raises on bad input: garbage before `##`, a length that is not four
digits or exceeds 1024, a frame that does not end with CR LF where its length says, a
CRC mismatch or a malformed segment each come back as a Reject naming the byte offset,
and the codec resynchronises on the next `##`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from drivers.link.framing import Reject
from gateway.core.errors import FrameError

MAX_SEGMENT = 1024  # clause 6.3.2: the data segment is 0…1024 bytes
HEAD = 6  # "##" and four digits
DATA_COMMANDS = {
    "2011": "real-time data",
    "2051": "minute data",
    "2061": "hourly data",
    "2031": "daily data",
}
COMMAND_NAMES = {
    **DATA_COMMANDS,
    "2021": "equipment running state",
    "2041": "equipment running time (daily)",
    "3020": "analyser parameters",
    "1062": "set real-time data interval",
    "9011": "request answer",
    "9012": "execution result",
    "9013": "notice answer",
    "9014": "data answer",
}
# data states of a pollutant's -Flag (table 6 of the standard); only N is normal
DATA_FLAGS = {
    "N": "normal",
    "F": "analyser stopped",
    "M": "maintenance",
    "S": "manual value",
    "D": "analyser fault",
    "C": "calibration",
    "T": "over the upper limit",
    "B": "communication fault",
}
VALUE_SUFFIXES = ("Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax")
_HEX = re.compile(rb"[0-9A-Fa-f]{4}")


class Hj212Error(FrameError):
    """A segment that cannot be read: the reason and the byte offset in the frame."""


def crc16(data: bytes) -> int:
    """HJ 212-2017 Annex A: register 0xFFFF; per byte register = (register >> 8) ^ byte,
    then 8 shifts right with XOR 0xA001 when the bit shifted out is 1."""
    r = 0xFFFF
    for b in data:
        r = (r >> 8) ^ b
        for _ in range(8):
            r = (r >> 1) ^ 0xA001 if r & 1 else r >> 1
    return r


def _crc16_modbus(data: bytes) -> int:
    r = 0xFFFF
    for b in data:
        r ^= b
        for _ in range(8):
            r = (r >> 1) ^ 0xA001 if r & 1 else r >> 1
    return r


@dataclass(frozen=True, slots=True)
class Pollutant:
    """One pollutant (or parameter) of CP: its code, its fields by suffix, its -Flag."""

    code: str
    fields: tuple[tuple[str, str], ...]  # ("Rtd", "12.3"), ("Flag", "N"), …

    def get(self, suffix: str) -> str | None:
        return next((v for k, v in self.fields if k == suffix), None)

    @property
    def flag(self) -> str | None:
        return self.get("Flag")

    def number(self, suffix: str) -> float | None:
        text = self.get(suffix)
        if text is None or text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            return None
        return value if value == value and abs(value) != float("inf") else None


@dataclass(frozen=True, slots=True)
class Frame:
    qn: str | None
    st: str
    cn: str
    pw: str
    mn: str
    flag: int | None
    cp: tuple[tuple[str, str], ...]  # plain CP fields (DataTime, QnRtn, …) in order
    pollutants: tuple[Pollutant, ...]
    crc: int
    raw: bytes
    packets: tuple[int, int] | None = None  # PNUM, PNO of a split message

    @property
    def layout(self) -> str:
        return "2017" if self.qn is not None or self.flag is not None else "2005"

    @property
    def reply_wanted(self) -> bool:
        """Flag bit A (bit 0): the sender waits for an answer."""
        return self.flag is not None and bool(self.flag & 1)

    @property
    def version(self) -> int | None:
        """Flag bits 2…7: 0 for HJ/T 212-2005, 1 for HJ 212-2017."""
        return None if self.flag is None else self.flag >> 2

    def field(self, key: str) -> str | None:
        return next((v for k, v in self.cp if k == key), None)


def parse_time(text: str, tz: tzinfo) -> int:
    """yyyyMMddHHmmss (or the 2005 layout's 17 digits with milliseconds) -> UTC ms."""
    if not text.isdigit() or len(text) not in (14, 17):
        raise ValueError(f"time {text!r} is not yyyyMMddHHmmss")
    ms = int(text[14:]) if len(text) == 17 else 0
    dt = datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[8:10]),
        int(text[10:12]),
        int(text[12:14]),
        tzinfo=tz,
    )
    return int(dt.timestamp() * 1000) + ms


def _pairs(text: str, base: int, seps: str) -> list[tuple[str, str, int]]:
    """Split `k=v` items on any of `seps`; (key, value, offset of the item)."""
    out: list[tuple[str, str, int]] = []
    start = 0
    for i in range(len(text) + 1):
        if i == len(text) or text[i] in seps:
            item = text[start:i]
            if item:
                key, eq, value = item.partition("=")
                if not eq or not key:
                    raise Hj212Error(f"field {item[:40]!r} is not key=value", base + start)
                out.append((key, value, base + start))
            start = i + 1
    return out


def parse_segment(segment: bytes, base: int = HEAD) -> tuple[dict[str, str], str]:
    """The header fields and the CP text of a data segment (offsets from `base`)."""
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError as e:
        raise Hj212Error("a byte that is not ASCII in the data segment", base + e.start) from None
    at = text.find("CP=&&")
    if at < 0:
        raise Hj212Error("no CP=&& in the data segment", base)
    if not text.endswith("&&") or len(text) < at + 7:
        raise Hj212Error("CP does not end with &&", base + len(text))
    head = {k: v for k, v, _ in _pairs(text[:at], base, ";")}
    for key in ("ST", "CN", "PW", "MN"):
        if key not in head:
            raise Hj212Error(f"no {key} in the data segment", base)
    return head, text[at + 5 : -2]


def decode_segment(segment: bytes, crc: int, raw: bytes, base: int = HEAD) -> Frame:
    head, cp_text = parse_segment(segment, base)
    cp_base = base + segment.find(b"CP=&&") + 5
    flag: int | None = None
    if "Flag" in head:
        if not head["Flag"].isdigit():
            raise Hj212Error(f"Flag {head['Flag']!r} is not a number", base)
        flag = int(head["Flag"])
    qn = head.get("QN")
    if qn is not None and (not qn.isdigit() or len(qn) != 17):
        raise Hj212Error(f"QN {qn!r} is not yyyyMMddHHmmssSSS", base)
    if not head["CN"].isdigit():
        raise Hj212Error(f"CN {head['CN']!r} is not a number", base)
    plain: list[tuple[str, str]] = []
    pollutants: dict[str, list[tuple[str, str]]] = {}
    for key, value, _ in _pairs(cp_text, cp_base, ";,"):
        code, dash, suffix = key.rpartition("-")
        if dash and code:
            pollutants.setdefault(code, []).append((suffix, value))
        else:
            plain.append((key, value))
    packets = None
    pnum, pno = head.get("PNUM", ""), head.get("PNO", "")
    if flag is not None and flag & 2 and pnum.isdigit() and pno.isdigit():
        packets = (int(pnum), int(pno))
    return Frame(
        qn=qn,
        st=head["ST"],
        cn=head["CN"],
        pw=head["PW"],
        mn=head["MN"],
        flag=flag,
        cp=tuple(plain),
        pollutants=tuple(Pollutant(c, tuple(f)) for c, f in pollutants.items()),
        crc=crc,
        raw=raw,
        packets=packets,
    )


def _resync(buf: bytes, start: int = 1) -> int:
    """Where the next `##` begins after `start` (or all but a trailing '#')."""
    at = buf.find(b"##", start)
    if at >= 0:
        return at
    return len(buf) - 1 if buf.endswith(b"#") else len(buf)


def take(buf: bytes) -> tuple[int, Frame | Reject | None]:
    """Stream codec: one frame, one reject, or (0, None) to wait for more bytes."""
    if not buf:
        return 0, None
    if not buf.startswith(b"##"):
        at = buf.find(b"##", 1)
        if at < 0 and len(buf) < HEAD + MAX_SEGMENT + 6:
            return 0, None  # garbage so far: reported whole when the next ## arrives
        n = at if at > 0 else len(buf)
        return n, Reject("garbage", f"{n} bytes before ##", 0, buf[:n])
    if len(buf) < HEAD:
        return 0, None
    digits = buf[2:HEAD]
    if not digits.isdigit():
        n = _resync(buf, 2)
        return n, Reject("malformed", f"length field {digits!r} is not 4 digits", 2, buf[:n])
    length = int(digits)
    if length > MAX_SEGMENT:
        n = _resync(buf, 2)
        return n, Reject(
            "malformed", f"data segment length {length} exceeds {MAX_SEGMENT}", 2, buf[:n]
        )
    total = HEAD + length + 6
    if len(buf) < total:
        # a shorter frame's end inside the promised length means the length lies
        nxt = buf.find(b"##", HEAD)
        if nxt >= 0 and buf[nxt - 2 : nxt] == b"\r\n":
            return nxt, Reject(
                "malformed",
                f"length says {length} bytes but the frame ends at byte {nxt}",
                nxt - 2,
                buf[:nxt],
            )
        return 0, None
    end = HEAD + length
    if buf[end + 4 : total] != b"\r\n" or not _HEX.fullmatch(buf[end : end + 4]):
        n = _resync(buf, 2)
        return n, Reject(
            "malformed",
            f"no CRC and CR LF where the length ({length}) says the segment ends",
            end,
            buf[:n],
        )
    segment = buf[HEAD:end]
    said = int(buf[end : end + 4], 16)
    got = crc16(segment)
    if said != got:
        hint = (
            " (that is the CRC-16/Modbus of the segment, not the standard's Annex A CRC)"
            if said == _crc16_modbus(segment)
            else ""
        )
        return total, Reject(
            "crc",
            f"CRC mismatch: frame says {said:04X}, bytes give {got:04X}{hint}",
            end,
            buf[:total],
            station=_mn_of(segment),
        )
    try:
        return total, decode_segment(segment, said, buf[:total])
    except Hj212Error as e:
        return total, Reject("malformed", e.reason, e.offset, buf[:total], _mn_of(segment))


def _mn_of(segment: bytes) -> str | None:
    m = re.search(rb"(?:^|;)MN=([^;]{1,64});", segment)
    return m.group(1).decode("ascii", "replace") if m else None


def decode_frame(data: bytes) -> tuple[Frame, bytes]:
    """Decode exactly one frame at the start of `data`; the rest comes back untouched."""
    if not data.endswith(b"\r\n") and data.count(b"##") <= 1:
        data = data + b"\r\n"  # a frame pasted without its CR LF
    n, item = take(data)
    if item is None:
        if len(data) >= HEAD and data[2:HEAD].isdigit():
            want = HEAD + int(data[2:HEAD]) + 6
            raise Hj212Error(f"frame is {len(data)} bytes; its length says {want}", len(data))
        raise Hj212Error("not a whole frame", len(data))
    if isinstance(item, Reject):
        raise Hj212Error(item.reason, item.offset)
    return item, data[n:]


def encode(segment: str) -> bytes:
    """`##`, length, segment, CRC, CR LF."""
    body = segment.encode("ascii")
    if len(body) > MAX_SEGMENT:
        raise ValueError(f"data segment of {len(body)} bytes exceeds {MAX_SEGMENT}")
    return b"##%04d%s%04X\r\n" % (len(body), body, crc16(body))


def data_answer(frame: Frame) -> bytes:
    """The answer a data upload with Flag bit A asks for: CN=9014 with the upload's QN
    (clause 6.5 / table C: 数据应答), Flag=4 (version 2017, no answer wanted)."""
    return encode(f"QN={frame.qn};ST=91;CN=9014;PW={frame.pw};MN={frame.mn};Flag=4;CP=&&&&")


def readings(frame: Frame, tz: tzinfo) -> list[tuple[str, str, float, int, str | None]]:
    """(code, suffix, value, ts, flag) of every numeric value of a data frame.

    Real-time data are stamped with DataTime; minute, hourly and daily data too, which
    the standard makes the start of the period (clause 6.6.3 notes)."""
    if frame.cn not in DATA_COMMANDS:
        return []
    when = frame.field("DataTime")
    if when is None:
        raise Hj212Error(f"CN={frame.cn} data without DataTime", HEAD)
    try:
        ts = parse_time(when, tz)
    except ValueError as e:
        raise Hj212Error(str(e), HEAD) from None
    out: list[tuple[str, str, float, int, str | None]] = []
    for p in frame.pollutants:
        for suffix, _ in p.fields:
            if suffix not in VALUE_SUFFIXES:
                continue
            value = p.number(suffix)
            if value is not None:
                out.append((p.code, suffix, value, ts, p.flag))
    return out
