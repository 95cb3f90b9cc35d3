"""What every byte-stream codec shares: CRC, rejects, and a stream that feeds a codec.

A codec is a pure function `take(buf) -> (consumed, item | None)`:

* `(0, None)`: the buffer holds no whole frame yet; feed more bytes;
* `(n, frame)`: the first n bytes were one frame;
* `(n, Reject)`: the first n bytes are discarded, for the reason the Reject states.

A codec never raises on bad input: garbage, a bad CRC or a malformed body comes back as a
Reject and the codec resynchronises on the next start sequence, so no valid neighbouring
frame is lost. `Stream` keeps the unconsumed tail between reads and turns buffer offsets
into stream offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

RejectKind = Literal["garbage", "crc", "malformed", "truncated"]


@dataclass(frozen=True, slots=True)
class Reject:
    """Bytes a codec discarded: why, where (byte offset), and whose they were if known."""

    kind: RejectKind
    reason: str
    offset: int
    raw: bytes
    station: str | None = None

    def describe(self) -> str:
        """The reason, and which bytes of the stream were discarded."""
        who = f"station {self.station}: " if self.station else ""
        return f"{who}{self.reason}; {len(self.raw)} bytes discarded at stream offset {self.offset}"


F = TypeVar("F")


def crc16_modbus(data: bytes) -> int:
    """CRC-16 with the Modbus arithmetic: reflected polynomial 0xA001, initial 0xFFFF."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_CRC_TABLE = _table()


def crc16(data: bytes) -> int:
    """Table-driven crc16_modbus (the same numbers, faster)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


class Stream(Generic[F]):
    """Feeds a codec from a byte stream; keeps the partial tail between reads."""

    def __init__(self, take: Callable[[bytes], tuple[int, F | Reject | None]]) -> None:
        self._take = take
        self._buf = b""
        self.position = 0  # stream offset of the first byte in the buffer

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[F | Reject]:
        self._buf += data
        out: list[F | Reject] = []
        while self._buf:
            consumed, item = self._take(self._buf)
            if consumed == 0:
                break
            if isinstance(item, Reject):
                item = replace(item, offset=self.position + item.offset)
            if item is not None:
                out.append(item)
            self._buf = self._buf[consumed:]
            self.position += consumed
        return out

    def flush(self, why: str) -> Reject | None:
        """Discard a partial frame (connection lost, line silent); say so, with where."""
        if not self._buf:
            return None
        kind: RejectKind = "truncated"
        reject = Reject(kind, f"partial frame discarded: {why}", self.position, self._buf)
        self.position += len(self._buf)
        self._buf = b""
        return reject
