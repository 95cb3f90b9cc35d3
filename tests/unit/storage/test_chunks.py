"""The chunk codec: lossless round trips, realistic sizes, corrupt blobs refused."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.devtools.bench.series import realistic_series
from gateway.storage import chunks

DAY0 = 1_780_012_800_000  # a UTC midnight


def bits(points: list[chunks.Point]) -> list[tuple[int, bytes, int]]:
    return [(t, struct.pack(">d", v), f) for t, v, f in points]


@st.composite
def series(draw: st.DrawFn) -> list[chunks.Point]:
    ts = sorted(draw(st.sets(st.integers(-(2**50), 2**50), max_size=300)))
    decimal = draw(st.booleans())
    if decimal:
        d = draw(st.integers(0, 4))
        vals = st.integers(-(10**9), 10**9).map(lambda k: k / 10**d)
    else:
        vals = st.floats(allow_nan=False, allow_infinity=True)
    return [(t, draw(vals), draw(st.integers(0, 7))) for t in ts]


@given(series())
def test_round_trip_is_exact(points: list[chunks.Point]) -> None:
    assert bits(chunks.decode(chunks.encode(points))) == bits(points)


def test_negative_zero_nan_free_and_huge_values_survive() -> None:
    points = [(1, -0.0, 0), (2, 1e300, 0), (3, 5e-324, 1), (4, 0.1 + 0.2, 0)]
    out = chunks.decode(chunks.encode(points))
    assert bits(out) == bits(points)
    assert math.copysign(1, out[0][1]) < 0


@pytest.mark.parametrize(
    ("metric", "most"), [("rain_mm", 3.0), ("level_m", 3.0), ("crack_mm", 3.0)]
)
def test_realistic_day_fits_in_three_bytes_a_point(metric: str, most: float) -> None:
    points = realistic_series(metric, DAY0, 1440, seed=1)
    blob = chunks.encode(points)
    assert chunks.decode(blob) == points
    assert len(blob) / len(points) <= most


def test_points_must_increase() -> None:
    with pytest.raises(ValueError, match="must increase"):
        chunks.encode([(5, 1.0, 0), (5, 2.0, 0)])


@pytest.mark.parametrize(
    ("blob", "why"),
    [
        (b"", "unknown chunk version"),
        (b"\x09abc", "unknown chunk version"),
        (b"\x01not zlib", "does not decompress"),
    ],
)
def test_corrupt_blobs_are_refused(blob: bytes, why: str) -> None:
    with pytest.raises(chunks.ChunkError, match=why):
        chunks.decode(blob)


def test_truncated_body_is_refused() -> None:
    import zlib

    body = zlib.decompress(chunks.encode([(1, 1.5, 0), (2, 2.5, 0)])[1:])
    with pytest.raises(chunks.ChunkError, match="ends"):
        chunks.decode(b"\x01" + zlib.compress(body[:-2]))


def test_merge_keeps_the_first_stored_point() -> None:
    old = [(1, 1.0, 0), (3, 3.0, 0)]
    new = [(2, 2.0, 0), (3, 99.0, 0)]
    assert chunks.merge(old, new) == [(1, 1.0, 0), (2, 2.0, 0), (3, 3.0, 0)]


GOLDEN = [
    (1_780_000_000_000 + i * 60_000 + (7 if i == 5 else 0), v, f)
    for i, (v, f) in enumerate(
        [
            (2.125, 0),
            (2.13, 0),
            (0.0, 0),
            (2.2, 0),
            (2.2, 1),
            (-1.5, 0),
            (300.25, 0),
            (2.2, 0),
            (0.05, 0),
            (2.0, 300),
        ]
    )
]


def test_the_encoding_stays_byte_for_byte() -> None:
    """Blobs already stored must keep meaning the same: these bytes were written by the
    first version of the encoder (a change of format needs a new VERSION)."""
    assert chunks.encode(GOLDEN).hex() == (
        "0178da136958b0a4e55cfa8195ec0c0c0c7cd27c0c0cccb314b9162b6e5062786ef9e6954af3469"
        "5d38a7be480920c4c20e2060b00a15a0ead"
    )
    table = chunks.encode_table([p[0] for p in GOLDEN], [[p[1] for p in GOLDEN], [1.0] * 10])
    assert table.hex() == (
        "0278da13616958b0a4e55cfa8195ec0c0c0c7cd27c0c0cccb314b9162b6e5062786ef9e6954af3469"
        "5d38a7be4189818600000a0890dd5"
    )
