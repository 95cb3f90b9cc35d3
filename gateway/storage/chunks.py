"""Chunk codec: one series' points of one period as a compressed, lossless blob.

Pure: bytes in, points out; no IO, no clock.

Layout (before compression, all integers as zigzag LEB128 varints):
    count
    timestamps: first ts, first delta, then delta-of-deltas (regular reports: runs of 0)
    values:     scale d (0..9: every value is exactly k / 10**d; 255: float64 bits)
                d < 255: first k, then deltas of k
                d = 255: each value's 64 bits XOR the previous value's, 8 bytes big-endian
    flags:      one varint per point (runs of 0)
The table form (`encode_table`, version 2; 1-minute rollups: count, sum, min, max) has
the count, the number of columns, the timestamps, then each column as `values` above.
Then the whole body compressed with zlib level 9. Measured on the realistic 1-minute
series (`gateway/bench/series.py`), bytes per point, body alone / zlib 9 / raw LZMA2 preset 9e:
rain 3.01 / 0.82 / 0.77, level 3.01 / 0.93 / 0.89, crack 3.01 / 1.16 / 1.11: LZMA saves ~5 %
and costs ~20 times the time (encode + decode), so zlib. Decoding gives back exactly the
floats that were encoded (-0.0 and non-decimal floats take the float64 path).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

Point = tuple[int, float, int]  # (ts UTC ms, value, flags)

VERSION = 1  # points: ts, value, flags
TABLE_VERSION = 2  # timestamps and value columns
_FLOAT_BITS = 255
_MAX_SCALE = 9


class ChunkError(ValueError):
    """A chunk blob is not one this codec wrote (wrong version, truncated, corrupt)."""


def _put(out: bytearray, n: int) -> None:
    z = (n << 1) if n >= 0 else ((-n << 1) - 1)
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _put_all(out: bytearray, numbers: Sequence[int]) -> None:
    """`_put` of each number; the common one-byte case without a call (hot: compaction
    writes several varints per point)."""
    append = out.append
    for n in numbers:
        z = (n << 1) if n >= 0 else ((-n << 1) - 1)
        if z < 0x80:
            append(z)
        else:
            _put(out, n)


def _negative_zero(values: Sequence[float]) -> bool:
    return 0.0 in values and any(v == 0 and math.copysign(1.0, v) < 0 for v in values)


def _scaled(values: Sequence[float]) -> tuple[int, list[int]]:
    """The smallest d such that every value is exactly round(v * 10**d) / 10**d, with
    those integers; (_FLOAT_BITS, []) when there is none (-0.0 keeps its sign only as
    float64 bits)."""
    isfinite = math.isfinite
    if not all(map(isfinite, values)) or _negative_zero(values):
        return _FLOAT_BITS, []
    for d in range(_MAX_SCALE + 1):
        p = 10**d
        ks = []
        for v in values:
            scaled = v * p  # a huge value scaled overflows to inf: no exact scale
            if not isfinite(scaled):
                return _FLOAT_BITS, []
            k = round(scaled)
            if k / p != v:
                break
            ks.append(k)
        else:
            return d, ks
    return _FLOAT_BITS, []


def _put_ts(body: bytearray, stamps: Sequence[int]) -> None:
    if not stamps:
        return
    diffs = [stamps[0]]
    prev_ts, prev_delta = stamps[0], 0
    for i in range(1, len(stamps)):
        ts = stamps[i]
        delta = ts - prev_ts
        if delta <= 0:
            raise ValueError(f"chunk points must increase in ts: {ts} after {prev_ts}")
        diffs.append(delta if i == 1 else delta - prev_delta)
        prev_delta, prev_ts = delta, ts
    _put_all(body, diffs)


def _put_values(
    body: bytearray, values: Sequence[float], scaled: tuple[int, list[int]] | None = None
) -> None:
    d, ks = scaled or _scaled(values)
    body.append(d)
    if d == _FLOAT_BITS:
        prev_bits = 0
        for v in values:
            bits = struct.unpack(">Q", struct.pack(">d", v))[0]
            body += (bits ^ prev_bits).to_bytes(8, "big")
            prev_bits = bits
    else:
        _put_all(body, [k - prev for k, prev in zip(ks, [0, *ks], strict=False)])


def encode(points: Sequence[Point]) -> bytes:
    """Points sorted by ts, no two with the same ts -> blob."""
    body = bytearray()
    _put(body, len(points))
    _put_ts(body, [p[0] for p in points])
    _put_values(body, [p[1] for p in points])
    _put_all(body, [p[2] for p in points])
    return bytes([VERSION]) + zlib.compress(bytes(body), 9)


def encode_table(stamps: Sequence[int], columns: Sequence[Sequence[float]]) -> bytes:
    """Increasing timestamps and value columns of the same length (rollup buckets:
    count, sum, min, max) -> blob. A column repeating another (sum = min = max for one
    reading a bucket) costs next to nothing after zlib, and its scale is found once."""
    body = bytearray()
    _put(body, len(stamps))
    _put(body, len(columns))
    _put_ts(body, stamps)
    done: list[tuple[Sequence[float], tuple[int, list[int]]]] = []
    for col in columns:
        if len(col) != len(stamps):
            raise ValueError(f"a column has {len(col)} values for {len(stamps)} timestamps")
        scaled: tuple[int, list[int]]
        if _negative_zero(col):  # == does not tell -0.0 from 0.0: no reuse
            scaled = _FLOAT_BITS, []
        else:
            scaled = next((sc for c, sc in done if c == col), None) or _scaled(col)
            done.append((col, scaled))
        _put_values(body, col, scaled)
    return bytes([TABLE_VERSION]) + zlib.compress(bytes(body), 9)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def num(self) -> int:
        buf = self.buf
        shift = z = 0
        while True:
            try:
                b = buf[self.pos]
            except IndexError:
                raise ChunkError("chunk body ends inside a number") from None
            self.pos += 1
            z |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        return (z >> 1) ^ -(z & 1)

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise ChunkError("chunk body ends before the value scale")
        self.pos += 1
        return self.buf[self.pos - 1]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise ChunkError("chunk body ends inside a float")
        self.pos += n
        return self.buf[self.pos - n : self.pos]


def _body(blob: bytes, version: int) -> _Reader:
    if not blob or blob[0] != version:
        raise ChunkError(f"unknown chunk version {blob[0] if blob else None}")
    try:
        return _Reader(zlib.decompress(blob[1:]))
    except zlib.error as e:
        raise ChunkError(f"chunk does not decompress: {e}") from e


def _count(r: _Reader) -> int:
    n = r.num()
    if n < 0:
        raise ChunkError(f"negative count {n}")
    return n


def _get_ts(r: _Reader, n: int) -> list[int]:
    ts: list[int] = []
    prev = delta = 0
    for i in range(n):
        if i == 0:
            prev = r.num()
        elif i == 1:
            delta = r.num()
            prev += delta
        else:
            delta += r.num()
            prev += delta
        ts.append(prev)
    return ts


def _get_values(r: _Reader, n: int) -> list[float]:
    d = r.byte()
    values: list[float] = []
    if d == _FLOAT_BITS:
        bits = 0
        for _ in range(n):
            bits ^= int.from_bytes(r.raw(8), "big")
            values.append(struct.unpack(">d", bits.to_bytes(8, "big"))[0])
    elif d <= _MAX_SCALE:
        p = 10**d
        k = 0
        for _ in range(n):
            k += r.num()
            values.append(k / p)
    else:
        raise ChunkError(f"unknown value scale {d}")
    return values


def _end(r: _Reader) -> None:
    if r.pos != len(r.buf):
        raise ChunkError(f"{len(r.buf) - r.pos} bytes left after the last column")


def decode(blob: bytes) -> list[Point]:
    r = _body(blob, VERSION)
    n = _count(r)
    ts = _get_ts(r, n)
    values = _get_values(r, n)
    flags = [r.num() for _ in range(n)]
    _end(r)
    return list(zip(ts, values, flags, strict=True))


def decode_table(blob: bytes) -> tuple[list[int], list[list[float]]]:
    r = _body(blob, TABLE_VERSION)
    n = _count(r)
    ncols = _count(r)
    ts = _get_ts(r, n)
    columns = [_get_values(r, n) for _ in range(ncols)]
    _end(r)
    return ts, columns


def merge(old: Sequence[Point], new: Sequence[Point]) -> list[Point]:
    """Both sorted by ts; on the same ts the old point is kept (stored once, first wins)."""
    out: dict[int, Point] = {p[0]: p for p in new}
    out.update({p[0]: p for p in old})
    return [out[t] for t in sorted(out)]
