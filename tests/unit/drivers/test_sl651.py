"""SL651 codec: the reference frames, partial feeds, garbage, corruption, replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.link.framing import Reject, Stream, crc16, crc16_modbus
from drivers.sl651 import codec as sl651
from drivers.sl651.codec import Frame, Reassembler, Sl651Error, decode_frame, take

# copies of ../shared/reference/sl651_frames_*.txt (public test data, wainshine/SL651),
# kept in the repository so a fresh clone tests on its own
REFERENCE = Path(__file__).resolve().parents[3] / "drivers" / "sl651" / "testdata"
EXAMPLE = bytes.fromhex(
    "7E7E000081120005FFFF3200200225B9260701063006F1F1008112000550F0F0260701063026190018483812120003C648"
)
T0630 = 1782858600000  # 2026-07-01 06:30 Beijing time, in UTC ms


def reference_frames() -> list[tuple[str, int, bytes]]:
    out = []
    for path in sorted(REFERENCE.glob("sl651_frames_*.txt")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                out.append((path.name, n, bytes.fromhex(line)))
    return out


FRAMES = reference_frames()


def test_reference_files_are_there() -> None:
    assert len(FRAMES) == 14 + 25


@pytest.mark.parametrize(("name", "line", "data"), FRAMES, ids=[f"{n}:{i}" for n, i, _ in FRAMES])
def test_every_reference_frame_decodes_and_trailing_bytes_are_reported(
    name: str, line: int, data: bytes
) -> None:
    frame, rest = decode_frame(data)
    total = sl651.frame_length(data)
    assert total is not None and len(frame.raw) == total
    assert frame.raw + rest == data
    # the only bytes past a frame in these files are one 7E (Fujian), nothing else
    assert rest in (b"", b"\x7e")
    assert frame.header.crc == crc16(frame.raw[:-2])
    if frame.header.function in (0x30, 0x31, 0x32, 0x33, 0x34, 0x37, 0x38, 0x3A, 0x35):
        assert frame.elements, "reports carry elements"
    # every function of the standard is decoded: nothing is left "not decoded"
    assert not any("not decoded" in n or "not defined" in n for n in frame.notes)


def test_trailing_bytes_are_exactly_the_fujian_lines_with_a_7e() -> None:
    trailing = [(n, i) for n, i, d in FRAMES if decode_frame(d)[1]]
    assert trailing == [
        ("sl651_frames_fujian.txt", 8),
        ("sl651_frames_fujian.txt", 12),
        ("sl651_frames_fujian.txt", 18),
        ("sl651_frames_fujian.txt", 24),
        ("sl651_frames_fujian.txt", 26),
    ]


def test_the_worked_example() -> None:
    frame, rest = decode_frame(EXAMPLE)
    assert rest == b""
    h = frame.header
    assert (h.centre, h.station, h.password, h.function, h.downlink) == (
        0,
        "0081120005",
        "FFFF",
        0x32,
        False,
    )
    assert (frame.serial, frame.station_type) == (0x25B9, 0x50)
    assert [(e.name, e.value, e.unit, e.ts) for e in frame.elements] == [
        ("PT", 184.8, "mm", T0630),
        ("VT", 12.0, "V", T0630),
    ]


def test_values_negative_missing_status_and_extended_ids() -> None:
    # Beijing line 5: ZT is a HEX bit field; FF09/FF33 are extended identifiers
    f = decode_frame(FRAMES[0][2])[0]
    assert [(e.name, e.value) for e in f.elements] == [
        ("PT", 311.3),
        ("ZT", float(0x00600481)),
        ("VT", 12.87),
        ("FF09", 20.0),
        ("FF33", 20.5),
    ]
    assert sl651._value(b"\xff\x12\x34", 2, 0) == -12.34
    assert sl651._value(b"\xff\xff\xff", 1, 0) is None
    assert sl651._value(b"\xaa\xaa", 1, 0) is None
    # Fujian 0x37: Z = FFFFFFFF is "no value"
    q = next(decode_frame(d)[0] for _, _, d in FRAMES if d[10] == 0x37)
    assert [(e.name, e.value) for e in q.elements] == [
        ("PJ", 0.0),
        ("PT", 0.0),
        ("Z", None),
        ("VT", 11.43),
    ]


def test_arrays_time_step_and_observation_time_changes() -> None:
    hourly = next(
        decode_frame(d)[0] for n, i, d in FRAMES if (n, i) == ("sl651_frames_fujian.txt", 18)
    )
    f4 = [e for e in hourly.elements if e.code == "F4"]
    f5 = [e for e in hourly.elements if e.code == "F5"]
    assert len(f4) == len(f5) == 12
    # F0F0 2212021220 before F4: the time of the FIRST value (tables 36/45 notes), so the
    # twelve values are 12:20, 12:25 … 13:15 (the old reading, 11:25 … 12:20, was wrong)
    t1220 = 1669954800000  # 2022-12-02 12:20 Beijing
    assert [e.ts for e in f4] == [t1220 + k * 300_000 for k in range(12)]
    assert [e.ts for e in f5] == [t1220 + k * 300_000 for k in range(12)]
    assert f5[0].value == 26.05 and f5[-1].value == 27.96 and f5[0].name == "Z"
    # F0F0 2212021315 resets the time for PT: the hour's last 5-minute value is at 13:15 too
    pt = next(e for e in hourly.elements if e.name == "PT")
    assert pt.ts == t1220 + 55 * 60_000 == f4[-1].ts and pt.value == 319.6
    uniform = next(decode_frame(d)[0] for _, _, d in FRAMES if d[10] == 0x31)
    z = [e for e in uniform.elements if e.name == "Z"]
    t1005 = 1670205900000  # 2022-12-05 10:05 Beijing
    assert [e.ts for e in z] == [t1005 + k * 300_000 for k in range(12)]
    assert {e.value for e in z} == {28.96}


def test_manual_entry_and_version() -> None:
    manual = next(decode_frame(d)[0] for _, _, d in FRAMES if d[10] == 0x35)
    assert manual.text == "Q 1.234" and [(e.name, e.value) for e in manual.elements] == [
        ("Q", 1.234)
    ]
    version = next(decode_frame(d)[0] for _, _, d in FRAMES if d[10] == 0x45)
    assert version.text == "V1.0.20220420"


def test_crc_is_modbus_arithmetic_high_byte_first() -> None:
    assert crc16(EXAMPLE[:-2]) == crc16_modbus(EXAMPLE[:-2]) == 0xC648
    assert EXAMPLE[-2:] == b"\xc6\x48"


@pytest.mark.parametrize(
    ("data", "reason", "offset"),
    [
        (EXAMPLE[:-1] + b"\x49", "CRC mismatch: frame says C649, bytes give C648", 47),
        (EXAMPLE[:30], "frame truncated", 30),
        (b"\x00" + EXAMPLE, "a frame starts with 7E 7E (HEX) or 01 SOH (ASCII); a 7E 7E", 0),
        (EXAMPLE[:13] + b"\x05" + EXAMPLE[14:], "start character 05", 13),
        (EXAMPLE[:11] + b"\x40" + EXAMPLE[12:], "direction nibble 4", 11),
    ],
)
def test_bad_frames_say_what_and_where(data: bytes, reason: str, offset: int) -> None:
    with pytest.raises(Sl651Error) as e:
        decode_frame(data)
    assert e.value.reason.startswith(reason) and e.value.offset == offset


def test_bad_bcd_in_a_good_crc_frame_names_the_byte() -> None:
    body = bytearray(EXAMPLE[14:-3])
    body[-6] = 0x1A  # a PT digit that is not BCD
    frame = sl651.encode(
        centre=0, station="0081120005", password="FFFF", function=0x32, body=bytes(body)
    )
    with pytest.raises(Sl651Error, match="byte 1A is not BCD") as e:
        decode_frame(frame)
    assert e.value.offset == 14 + len(body) - 6
    n, item = take(frame)
    assert n == len(frame) and isinstance(item, Reject) and item.kind == "malformed"


def stream_of(frames: list[bytes]) -> bytes:
    return b"".join(frames)


def test_byte_by_byte_feed_gives_every_frame_once() -> None:
    frames = [d for _, _, d in FRAMES]
    data = stream_of(frames)
    s: Stream[Frame] = Stream(take)
    out: list[Frame | Reject] = []
    for b in data:
        out.extend(s.feed(bytes([b])))
    got = [x for x in out if isinstance(x, Frame)]
    assert [f.raw for f in got] == [decode_frame(d)[0].raw for d in frames]
    # the five stray 7E bytes of the Fujian lines are reported, not silently dropped
    rejects = [x for x in out if isinstance(x, Reject)]
    assert sum(len(r.raw) for r in rejects) == 5 and s.pending == 0


def test_garbage_truncation_and_bad_crc_lose_no_neighbour() -> None:
    a, b, c = (decode_frame(d)[0].raw for _, _, d in FRAMES[:3])
    bad_crc = c[:-1] + bytes([c[-1] ^ 0xFF])
    data = b"\x00\x7e\x11" + a + b"\x7e\x7e\x7e" + b[:25] + c + bad_crc + a + b"\x7e"
    s: Stream[Frame] = Stream(take)
    out = []
    for i in range(0, len(data), 7):
        out.extend(s.feed(data[i : i + 7]))
    frames = [x.raw for x in out if isinstance(x, Frame)]
    assert frames == [a, c, a]
    kinds = [x.kind for x in out if isinstance(x, Reject)]
    assert "crc" in kinds and "truncated" in kinds and kinds[0] == "garbage"
    crc = next(x for x in out if isinstance(x, Reject) and x.kind == "crc")
    assert crc.station == "0030745815" and crc.raw == bad_crc
    assert s.pending == 1  # a lone 7E might start the next frame
    assert s.flush("test") is not None


def test_a_truncated_frame_is_given_up_when_the_next_arrives_whole() -> None:
    a, b = (decode_frame(d)[0].raw for _, _, d in FRAMES[:2])
    s: Stream[Frame] = Stream(take)
    assert s.feed(a[:40]) == []
    out = s.feed(b)
    assert isinstance(out[0], Reject) and out[0].kind == "truncated" and out[0].offset == 0
    assert isinstance(out[1], Frame) and out[1].raw == b


def test_multi_packet_reassembly() -> None:
    body = EXAMPLE[14:-3]
    parts = [body[:10], body[10:20], body[20:]]
    # table 22: the length counts the 3 packet bytes after SYN
    assert sl651.encode(
        centre=0,
        station="0081120005",
        password="FFFF",
        function=0x32,
        body=parts[0],
        packet=(3, 1),
        end=sl651.ETB,
    )[11:17] == bytes.fromhex("000D") + bytes.fromhex("16003001")
    frames = [
        sl651.encode(
            centre=0,
            station="0081120005",
            password="FFFF",
            function=0x32,
            body=p,
            packet=(3, k + 1),
            end=sl651.ETB if k < 2 else sl651.ETX,
        )
        for k, p in enumerate(parts)
    ]
    r = Reassembler()
    got = []
    for raw in (frames[0], frames[2], frames[1]):  # out of order on the way
        n, f = take(raw)
        assert n == len(raw) and isinstance(f, Frame)
        got.append(r.add(f))
    whole = got[-1]
    assert got[:2] == [None, None] and whole is not None
    assert [(e.name, e.value) for e in whole.elements] == [("PT", 184.8), ("VT", 12.0)]
    assert whole.notes[-1] == "reassembled from 3 packets"


def test_confirmation_is_a_downlink_frame_with_the_serial() -> None:
    frame = decode_frame(EXAMPLE)[0]
    reply = sl651.confirmation(frame, T0630 + 5000)
    back = decode_frame(reply)[0]
    h = back.header
    assert h.downlink and h.station == "0081120005" and h.function == 0x32 and h.end == sl651.EOT
    assert back.raw[14:16] == b"\x25\xb9"
    assert back.raw[16:22] == bytes.fromhex("260701063005")
