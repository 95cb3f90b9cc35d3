"""Every codec, fed anything: no exception but its own decode error escapes, and the
stream codecs always make progress (no endless loop on any input)."""

from __future__ import annotations

import contextlib
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.cigem import codec as cigem
from drivers.gb26875 import codec as gb26875
from drivers.link.framing import Reject, Stream
from drivers.modbus import codec as modbus_rtu
from drivers.sl651 import codec as sl651
from gateway.cli.decode import DecodeError, decode

GOOD_SL651 = bytes.fromhex(
    "7E7E000081120005FFFF3200200225B9260701063006F1F1008112000550F0F0260701063026190018483812120003C648"
)
TZ = ZoneInfo("Asia/Shanghai")


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Frames with a few bytes changed, cut or spliced: closer to real faults than noise."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(0, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(data)))
        tail = draw(st.binary(max_size=20))
        return bytes(data[:cut]) + tail if draw(st.booleans()) else bytes(data)

    return build()


def run_stream(take: object, data: bytes) -> list[object]:
    s: Stream[object] = Stream(take)  # type: ignore[arg-type]
    out: list[object] = []
    for i in range(0, len(data), 5):
        out.extend(s.feed(data[i : i + 5]))
    s.flush("end")
    return out


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), mutated(GOOD_SL651), mutated(GOOD_SL651 * 2)))
def test_sl651_never_raises_foreign_errors(data: bytes) -> None:
    out = run_stream(sl651.take, data)
    assert all(isinstance(x, sl651.Frame | Reject) for x in out)
    with contextlib.suppress(sl651.Sl651Error):
        sl651.decode_frame(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_stream_keeps_every_byte_accounted_for(data: bytes) -> None:
    s: Stream[sl651.Frame] = Stream(sl651.take)
    out = s.feed(data + GOOD_SL651)
    seen = sum(len(x.raw) for x in out)
    assert seen + s.pending == len(data) + len(GOOD_SL651)
    assert isinstance(out[-1], sl651.Frame) and out[-1].raw == GOOD_SL651


GOOD_GB = gb26875.encode(
    serial=1,
    sent_at=1782858600000,
    source="000000000001",
    destination="000000000002",
    command=2,
    data=bytes([1, 1, 1, 0, 2, 0, 0, 30, 6, 1, 7, 26]),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), mutated(GOOD_GB)))
def test_gb26875_never_raises_foreign_errors(data: bytes) -> None:
    run_stream(gb26875.take, data)
    with contextlib.suppress(gb26875.Gb26875Error):
        gb26875.decode_frame(data)


GOOD_MB = bytes.fromhex("020300000003 05F8".replace(" ", ""))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=100), mutated(GOOD_MB)))
def test_modbus_never_raises_foreign_errors(data: bytes) -> None:
    run_stream(modbus_rtu.take, data)
    with contextlib.suppress(modbus_rtu.ModbusFrameError):
        modbus_rtu.decode_frame(data)


GOOD_CIGEM = cigem.encode(2, {"dev1": {"L1_LF_1": {"2026-04-05T08:23:10.000Z": 0.2136}}})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=100), mutated(GOOD_CIGEM)))
def test_cigem_never_raises_foreign_errors(data: bytes) -> None:
    with contextlib.suppress(cigem.CigemError):
        cigem.decode(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["sl651", "modbus-rtu", "gb26875", "cigem", "hj212"]), st.binary(max_size=120)
)
def test_decode_command_core_only_raises_decode_error(protocol: str, data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(protocol, data, TZ, now_ms=0)


GOOD_HJ212 = (
    b"##0285QN=20190925181031464;ST=22;CN=2061;PW=BF470F88957588DE902D1A52;MN=Z13401000010301;"
    b"Flag=5;CP=&&DataTime=20190924220000;a34006-Avg=2.69700,a34006-Flag=N;a34007-Avg=7.96600,"
    b"a34007-Flag=N;a34048-Avg=3.30600,a34048-Flag=N;a34047-Avg=7.35700,a34047-Flag=N;"
    b"a34049-Avg=10.66300,a34049-Flag=N&&C181\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), mutated(GOOD_HJ212)))
def test_hj212_stream_and_decode_never_raise_foreign_errors(data: bytes) -> None:
    from drivers.hj212 import codec as hj212

    run_stream(hj212.take, data + GOOD_HJ212)
    with contextlib.suppress(hj212.Hj212Error):
        f, _ = hj212.decode_frame(data)
        hj212.readings(f, TZ)
