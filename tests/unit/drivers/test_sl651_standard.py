"""SL651 against SL 651-2014's own rules, clause by clause (table-driven).

Every expected value here is worked out by hand from the standard's text (clause and table
named beside it) or from the public frames in drivers/sl651/testdata/ (sources in its
README); none is copied from the decoder's output.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.link.framing import Reject, Stream, crc16
from drivers.sl651 import ascii as sl651_ascii
from drivers.sl651 import codec as sl651
from drivers.sl651 import elements as tables
from drivers.sl651.codec import Frame, Reassembler, Sl651Error, decode_frame, restamp, take

BJ = ZoneInfo("Asia/Shanghai")
TESTDATA = Path(__file__).resolve().parents[3] / "drivers" / "sl651" / "testdata"
HEAD = "0001 260701063000"  # serial 1, sent 2026-07-01 06:30:00
STATION = "F1F1 0012345678"


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=BJ).timestamp()) * 1000  # type: ignore[misc]


def line(name: str, n: int) -> bytes:
    return bytes.fromhex(
        (TESTDATA / f"sl651_frames_{name}.txt").read_text().splitlines()[n - 1].strip()
    )


def hexframe(function: int, body_hex: str, *, end: int = 0x03) -> bytes:
    """A HEX/BCD uplink frame laid out by hand per table 20 (centre 01, station 0012345678,
    password 1234), the CRC computed over everything before it."""
    body = bytes.fromhex(body_hex.replace(" ", ""))
    head = bytes.fromhex("7E7E 01 0012345678 1234") + bytes([function])
    frame = head + len(body).to_bytes(2, "big") + b"\x02" + body + bytes([end])
    return frame + crc16(frame).to_bytes(2, "big")


def one(data: bytes) -> Frame:
    frame, rest = decode_frame(data)
    assert rest == b""
    return frame


def values(frame: Frame) -> list[tuple[str, float | None, int]]:
    return [(e.name, e.value, e.ts) for e in frame.elements]


# --- multi-packet frames: the length rule (table 22) ------------------------------------------


def packet(total: int, seq: int, part: bytes, end: int) -> bytes:
    """Table 22 by hand: the length is 3 (packet total/sequence) + the part's bytes."""
    length = 3 + len(part)
    frame = (
        bytes.fromhex("7E7E 01 0012345678 1234 32")
        + length.to_bytes(2, "big")
        + b"\x16"
        + ((total << 12) | seq).to_bytes(3, "big")
        + part
        + bytes([end])
    )
    return frame + crc16(frame).to_bytes(2, "big")


REPORT_BODY = bytes.fromhex(f"{HEAD} {STATION} 50 F0F0 2607010630 2619001848 381212 00")


def test_the_length_of_a_syn_frame_counts_its_packet_bytes() -> None:
    p1 = packet(2, 1, REPORT_BODY[:12], sl651.ETB)
    assert p1[11:13] == bytes.fromhex("000F")  # 3 + 12
    assert sl651.frame_length(p1) == len(p1)
    # the same layout as wainshine/SL651's multi-packet test (body_len = 3 + len(part))
    assert p1 == sl651.encode(
        centre=1,
        station="0012345678",
        password="1234",
        function=0x32,
        body=REPORT_BODY[:12],
        packet=(2, 1),
        end=sl651.ETB,
    )


def test_packets_back_to_back_on_a_stream_are_two_frames_and_join() -> None:
    p1 = packet(2, 1, REPORT_BODY[:12], sl651.ETB)
    p2 = packet(2, 2, REPORT_BODY[12:], sl651.ETX)
    s: Stream[Frame] = Stream(take)
    out: list[Frame | Reject] = []
    for b in p1 + p2:  # byte by byte: the old reading waited for 3 bytes of the next frame
        out.extend(s.feed(bytes([b])))
    assert [type(x) for x in out] == [Frame, Frame] and s.pending == 0
    r = Reassembler()
    assert isinstance(out[0], Frame) and isinstance(out[1], Frame)
    assert r.add(out[0]) is None
    whole = r.add(out[1])
    assert whole is not None
    # 38 12 1200: two bytes, two decimals -> 12.00 V
    assert values(whole) == [
        ("PT", 184.8, ms(2026, 7, 1, 6, 30)),
        ("VT", 12.0, ms(2026, 7, 1, 6, 30)),
    ]


def test_each_message_is_confirmed_and_a_missing_packet_is_asked_for_again() -> None:
    """Figure 2(a) and the notes of table 23: NAK carries the bad packet's sequence, EOT the
    total; both carry the message's serial and the packet total taken from the uplink."""
    parts = [REPORT_BODY[:10], REPORT_BODY[10:20], REPORT_BODY[20:]]
    frames = [
        one(packet(3, k + 1, p, sl651.ETB if k < 2 else sl651.ETX)) for k, p in enumerate(parts)
    ]
    r = Reassembler(retries=1)
    now = ms(2026, 7, 1, 6, 31)
    assert r.replies(frames[0], r.add(frames[0]), now) == []  # nothing before the last packet
    assert r.replies(frames[2], r.add(frames[2]), now) == [
        # 7E7E · station · centre 01 · 1234 · 32 · 8000|length 11 · SYN · 003 002 · serial 0001
        # · centre time 260701063100 · NAK · CRC
        _crc(bytes.fromhex("7E7E 0012345678 01 1234 32 800B 16 003002 0001 260701063100 15"))
    ]
    whole = r.add(frames[1])  # the station resends packet 2
    assert whole is not None
    assert r.replies(frames[1], whole, now) == [
        _crc(bytes.fromhex("7E7E 0012345678 01 1234 32 800B 16 003003 0001 260701063100 04"))
    ]
    assert [e.name for e in whole.elements] == ["PT", "VT"] and r.incomplete(flush=True) == []


def test_a_message_whose_packet_never_comes_is_kept_flagged_not_dropped() -> None:
    frames = [
        one(packet(3, 1, REPORT_BODY[:10], sl651.ETB)),
        one(packet(3, 3, REPORT_BODY[20:], 3)),
    ]
    r = Reassembler(retries=1)
    now = ms(2026, 7, 1, 6, 31)
    for f in frames:
        r.replies(f, r.add(f), now)
    assert r.incomplete() == []  # packet 2 asked for once: still waiting
    assert r.replies(frames[1], r.add(frames[1]), now) == []  # asked as often as allowed
    (left,) = r.incomplete()
    assert left.notes == ("incomplete message: packets 2 of 3 never arrived",)
    assert left.body == REPORT_BODY[:10] + REPORT_BODY[20:] and r.pending() == 0


def _crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "big")


# --- observation times of arrays (6.6.2.8 d, tables 36/45 notes) -----------------------------


def test_hourly_report_the_time_is_that_of_the_first_value() -> None:
    # Beijing line 25: F0F0 2607010505 F5C0 …, then F0F0 2607010600 39 (Z at 06:00)
    f = one(line("beijing", 25))
    f5 = [e for e in f.elements if e.code == "F5"]
    assert [e.ts for e in f5] == [ms(2026, 7, 1, 5, 5) + k * 300_000 for k in range(12)]
    assert f5[-1].ts == ms(2026, 7, 1, 6, 0) == next(e.ts for e in f.elements if e.code == "39")
    assert not f.notes


def test_a_station_that_stamps_the_end_of_the_hour_is_flagged_and_can_be_read_so() -> None:
    # Beijing line 20 (station 0030700300): sent 06:00:00 with F0F0 2607010600 before F4/F5:
    # read by the standard its values would lie 06:00…06:55, after the send time
    f = one(line("beijing", 20))
    assert f.sent_at == ms(2026, 7, 1, 6, 0)
    assert f.notes and "stamps the end of the hour" in f.notes[0]
    end = restamp(f, "end")
    f4 = [e for e in end.elements if e.code == "F4"]
    assert [e.ts for e in f4] == [ms(2026, 7, 1, 5, 5) + k * 300_000 for k in range(12)]
    assert next(e.ts for e in end.elements if e.name == "PT") == ms(2026, 7, 1, 6, 0)
    assert restamp(f, "first") is f


def test_all_zero_time_step_is_followed_by_hourly_groups() -> None:
    """Table C.1 note g / table C.3: 04 18 000000, then DRP groups of one hour each."""
    f = one(
        hexframe(
            0x38,
            f"{HEAD} {STATION} 50 F0F0 2607010700 0418 000000 F460"
            " 0102030405060708090A0B0C 00000000000000000000FF19",
        )
    )
    got = values(f)
    assert len(got) == 24
    assert got[0] == ("PN05", 0.1, ms(2026, 7, 1, 7, 0))
    assert got[11] == ("PN05", 1.2, ms(2026, 7, 1, 7, 55))
    assert got[12] == ("PN05", 0.0, ms(2026, 7, 1, 8, 0))
    assert got[22] == ("PN05", None, ms(2026, 7, 1, 8, 50))  # FF: no value
    assert got[23] == ("PN05", 2.5, ms(2026, 7, 1, 8, 55))  # 19H = 25 × 0.1 mm
    # Fujian line 24 (0x38 reply): F0F0 2212061205 041800 0000 F460 FF×12
    fj = one(line("fujian", 24)[:-1])
    assert [(e.value, e.ts) for e in fj.elements] == [
        (None, ms(2022, 12, 6, 12, 5) + k * 300_000) for k in range(12)
    ]


def test_all_zero_step_then_a_plain_element_is_refused_with_its_offset() -> None:
    data = hexframe(0x31, f"{HEAD} {STATION} 50 F0F0 2607010700 0418 000000 2619 001848")
    with pytest.raises(Sl651Error, match="followed by DRP/DRZ arrays") as e:
        decode_frame(data)
    assert e.value.offset == 14 + 8 + 8 + 7 + 5  # the 26 after the step


@pytest.mark.parametrize(
    ("code", "symbol"),
    [
        (0xF6, "DRZ2"),
        (0xF7, "DRZ3"),
        (0xF8, "DRZ4"),
        (0xF9, "DRZ5"),
        (0xFA, "DRZ6"),
        (0xFB, "DRZ7"),
        (0xFC, "DRZ8"),
    ],
)
def test_arrays_f6_to_fc_are_twelve_levels_in_centimetres(code: int, symbol: str) -> None:
    f = one(
        hexframe(0x34, f"{HEAD} {STATION} 5A F0F0 2607010700 {code:02X}C0 " + "0A2D" * 11 + "FFFF")
    )
    assert [(e.name, e.code) for e in f.elements][:1] == [(symbol, f"{code:02X}")]
    assert [e.value for e in f.elements] == [26.05] * 11 + [None]  # 0A2DH = 2605 cm
    assert f.elements[11].ts == ms(2026, 7, 1, 7, 55)


# --- the element table (appendix C) ------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "symbol", "value", "unit"),
    [
        ("2823 00012345", "Q1", 12.345, "m³/s"),  # N(9,3)
        ("2F23 00012345", "Q8", 12.345, "m³/s"),
        ("3C23 00012345", "Z1", 12.345, "m"),  # N(7,3)
        ("4323 FF012345", "Z8", -12.345, "m"),  # 6.6.3.3 a: FF marks a negative
        ("4612 0712", "pH", 7.12, None),
        ("4711 0085", "DO", 8.5, "mg/L"),
        ("4818 000350", "COND", 350.0, "μS/cm"),
        ("581A 001234", "WP1", 12.34, "kPa"),
        ("6B2A 0000012345", "SBL4", 123.45, "m³/h"),
        ("7011 2205", "VTA", 220.5, "V"),
        ("7511 0123", "VIC", 12.3, "A"),
        ("1111 0235", "M20", 23.5, "%"),
        ("3208 05", "SW", 5.0, "万吨"),
        ("3310 0012", "UC", 12.0, None),
        ("0512 0130", "DT", 1.5, "h"),  # HH.mm: 1 h 30 min (E.1.2.3)
        ("0508 03", "DT", 3.0, "h"),  # whole hours only
        ("0512 0045", "DT", 0.75, "h"),
    ],
)
def test_elements_by_symbol_unit_and_decimals(
    element: str, symbol: str, value: float, unit: str | None
) -> None:
    f = one(hexframe(0x32, f"{HEAD} {STATION} 48 F0F0 2607010630 {element}"))
    (e,) = f.elements
    assert (e.name, e.unit, e.ts) == (symbol, unit, ms(2026, 7, 1, 6, 30))
    assert e.value == pytest.approx(value)


def test_duration_minutes_above_59_are_refused_with_the_offset() -> None:
    with pytest.raises(Sl651Error, match="minutes above 59") as e:
        decode_frame(hexframe(0x32, f"{HEAD} {STATION} 48 F0F0 2607010630 0512 0175"))
    assert e.value.offset == 14 + 8 + 8 + 7 + 2


def test_every_identifier_of_table_c1_has_its_symbol() -> None:
    assert set(range(0x01, 0x76)) | set(range(0xF0, 0xFE)) == set(tables.ELEMENTS)
    assert len(tables.ELEMENTS) == 131  # rows 1–131 of table C.1 (row 132 76H–EFH reserved)
    assert tables.ELEMENTS[0x2F].symbol == "Q8" and tables.ELEMENTS[0x44].symbol == "SQ"
    assert (tables.ELEMENTS[0x52].digits, tables.ELEMENTS[0x52].decimals) == (7, 5)  # SE N(7,5)


# --- every function code (appendix B, 6.6.4.2–6.6.4.31) ----------------------------------


STATUS_BITS = "00000283"  # bits 0, 1, 7, 9: 停电, 电压低, 箱门关闭, IC卡有效


@pytest.mark.parametrize(
    ("function", "body", "fields", "text"),
    [
        (0x40, f"{STATION} 0C08 01", [("0C 工作方式", "1")], None),  # D.1: N(2) BCD
        (0x41, f"{STATION} 0128 0102030400 0F28 3131313131", None, None),
        (
            0x42,
            f"{STATION} 2008 06 2109 05",
            [("20 定时报时间间隔(h)", "6"), ("21 加报时间间隔(min)", "0.5")],
            None,
        ),
        (0x43, f"{STATION} 2823 FF001500", [("28 水位基值1(m)", "-1.500")], None),
        (0x45, f"{STATION} 05 56322E3031", [("软件版本", "V2.01")], "V2.01"),
        (0x46, f"{STATION} 4520 {STATUS_BITS}", None, None),
        (0x47, STATION, [], None),
        (0x48, STATION, [], None),
        (0x49, f"{STATION} 0310 ABCD", [("新密码", "ABCD")], None),
        (0x4A, STATION, [("遥测站时钟", "见发报时间")], None),
        (0x4B, f"{STATION} 4520 00000200", None, None),
        (0x4C, f"{STATION} 01 05", None, None),
        (0x4D, f"{STATION} 01 80", None, None),
        (
            0x4E,
            f"{STATION} 02 01 0120 0000",
            [("闸门数", "2"), ("1号闸门", "开 开度120厘米"), ("2号闸门", "关 开度0厘米")],
            None,
        ),
        (0x4F, f"{STATION} FF", [("水量定值控制", "已投入")], None),
        (0x51, STATION, [("遥测站时钟", "见发报时间")], None),
    ],
)
def test_replies_40_to_51(
    function: int, body: str, fields: list[tuple[str, str]] | None, text: str | None
) -> None:
    f = one(hexframe(function, f"{HEAD} {body}"))
    assert f.serial == 1 and f.sent_at == ms(2026, 7, 1, 6, 30)
    assert not f.notes and f.header.function_name == tables.FUNCTIONS[function]
    if fields is not None:
        assert list(f.fields) == fields
    assert f.text == text


def test_status_pumps_valves_events_by_table() -> None:
    status = dict(one(hexframe(0x46, f"{HEAD} {STATION} 4520 {STATUS_BITS}")).fields)
    assert status["状态字"] == "00000283"
    assert status["状态及报警"].startswith(
        "交流电充电状态=停电; 蓄电池电压状态=电压低; 水位超限报警状态=正常"
    )
    assert "终端箱门状态=关闭; 存储器状态=正常; IC卡功能有效=IC卡有效" in status["状态及报警"]
    pumps = dict(one(hexframe(0x4C, f"{HEAD} {STATION} 01 05")).fields)["水泵开关状态"]
    assert pumps.split()[:3] == ["1号开", "2号关", "3号开"]  # 05H: D0 and D2 (table 71)
    valves = dict(one(hexframe(0x4D, f"{HEAD} {STATION} 01 80")).fields)["阀门开关状态"]
    assert valves.split()[7] == "8号开" and valves.split()[0] == "1号关"
    events = one(hexframe(0x50, f"{HEAD} {STATION} " + "0003" + "0000" * 6 + "0102" + "0000" * 24))
    ev = dict(events.fields)
    assert ev["ERC1 历史数据初始化记录"] == "3" and ev["ERC8 蓄电池电压低告警记录"] == "258"
    assert len(events.fields) == 18  # ERC19–32 are reserved and zero here


def test_report_replies_37_38_3a_44_and_the_reserved_range() -> None:
    pump = one(hexframe(0x44, f"{HEAD} {STATION} 44 F0F0 2607010630 7011 2205 7311 0123"))
    assert values(pump) == [
        ("VTA", 220.5, ms(2026, 7, 1, 6, 30)),
        ("VIA", 12.3, ms(2026, 7, 1, 6, 30)),
    ]
    reserved = one(hexframe(0x3B, f"{HEAD} 0102"))
    assert reserved.header.function_name == "保留功能码" and "not defined" in reserved.notes[0]


def test_manual_entry_free_text_is_kept_as_text() -> None:
    """6.6.4.8: SL 330 codes or any agreed format, in its original encoding (GB 18030 here)."""
    text = "上坪河 水尺冲毁 已报告"
    f = one(hexframe(0x35, f"{HEAD} F2F2 " + text.encode("gb18030").hex()))
    assert f.text == text and f.elements == ()
    assert f.notes == ("manual entry kept as text (no element/value pairs)",)
    pairs = one(hexframe(0x39, f"{HEAD} F2F2 " + b"Z 12.35 PJ 1.5".hex()))
    assert [(e.name, e.value) for e in pairs.elements] == [("Z", 12.35), ("PJ", 1.5)]


JPEG = bytes.fromhex("FFD8FFE000104A46494600") + bytes(range(40)) + bytes.fromhex("FFD9")


def test_a_picture_over_packets_is_assembled() -> None:
    """Table 40: station · type · obs time · F3 F3 · JPEG; long bodies split into packets."""
    body = bytes.fromhex(f"{HEAD} {STATION} 48 F0F0 2607010630 F3F3") + JPEG
    cuts = [body[:20], body[20:45], body[45:]]
    r = Reassembler()
    got = None
    for k, part in enumerate(cuts):
        raw = sl651.encode(
            centre=1,
            station="0012345678",
            password="1234",
            function=0x36,
            body=part,
            packet=(3, k + 1),
            end=sl651.ETB if k < 2 else sl651.ETX,
        )
        got = r.add(one(raw))
    assert got is not None and got.picture == JPEG
    assert got.observed_at == ms(2026, 7, 1, 6, 30) and got.station_type == 0x48
    assert dict(got.fields) == {"图片字节数": str(len(JPEG))}


# --- variants seen in the field -----------------------------------------------------------


def test_f1_28_and_f0_28_are_accepted_and_flagged() -> None:
    f = one(hexframe(0x32, f"{HEAD} F128 0012345678 50 F028 2607010630 2619 001848"))
    assert values(f) == [("PT", 184.8, ms(2026, 7, 1, 6, 30))]
    assert f.variants == (
        "F1 28 in place of F1 F1 (station address identifier)",
        "F0 28 in place of F0 F0 (observation time identifier)",
    )
    standard = one(hexframe(0x32, f"{HEAD} {STATION} 50 F0F0 2607010630 2619 001848"))
    assert standard.variants == ()


def test_an_array_definition_byte_other_than_the_table_is_a_flagged_variant() -> None:
    f = one(line("fujian", 8)[:-1])  # F5 5C where table C.1 fixes 24 bytes (C0)
    assert f.variants == ("F5 5C in place of F5 C0 (array definition byte)",)
    assert [e.value for e in f.elements][:2] == [27.3, 27.3]  # 0AAAH = 2730 cm


# --- ASCII mode (6.4, 6.6.2) --------------------------------------------------------------


def asciiframe(function: int, body: str, *, downlink: bool = False) -> bytes:
    """Tables 16/17 by hand: SOH · centre 01 · station · password 1234 · function · length."""
    b = body.encode("ascii")
    addr = "001234567801" if downlink else "010012345678"
    d = 0x8000 if downlink else 0
    head = b"\x01" + f"{addr}1234{function:02X}{d | len(b):04X}".encode() + b"\x02"
    frame = head + b + b"\x03"
    return frame + f"{crc16(frame):04X}".encode()


def test_ascii_timed_report() -> None:
    body = "0001260701063000ST 0012345678 P TT 2607010630 PJ 1.5 PT 184.8 VT 12.12 "
    raw = asciiframe(0x32, body)
    assert raw[:24] == b"\x01" + b"01" + b"0012345678" + b"1234" + b"32" + b"0047" + b"\x02"
    assert len(body) == 0x47
    f = one(raw)
    h = f.header
    assert (h.ascii, h.centre, h.station, h.password, h.function, h.downlink) == (
        True,
        1,
        "0012345678",
        "1234",
        0x32,
        False,
    )
    assert (f.serial, f.sent_at, f.station_type) == (1, ms(2026, 7, 1, 6, 30), 0x50)
    t = ms(2026, 7, 1, 6, 30)
    assert values(f) == [("PJ", 1.5, t), ("PT", 184.8, t), ("VT", 12.12, t)]


def test_ascii_uniform_report_with_several_elements_and_missing_values() -> None:
    """6.6.4.4 b–d: in ASCII several elements may share one time step; M marks no value."""
    f = one(
        asciiframe(
            0x31,
            "0002260701070000ST 0012345678 H TT 2607010600 DRN30 Z PJ 10.25 0.5 M 1.0 10.31 M ",
        )
    )
    t = ms(2026, 7, 1, 6, 0)
    assert values(f) == [
        ("Z", 10.25, t),
        ("PJ", 0.5, t),
        ("Z", None, t + 1_800_000),
        ("PJ", 1.0, t + 1_800_000),
        ("Z", 10.31, t + 3_600_000),
        ("PJ", None, t + 3_600_000),
    ]


def test_ascii_hourly_arrays_and_status() -> None:
    body = (
        "0003260701080000ST 0012345678 H TT 2607010700 DRP 0102030405060708090A0B0C "
        "DRZ1 " + "0A2D" * 11 + "FFFF ZT 00000283 DT 01.30 "
    )
    f = one(asciiframe(0x34, body))
    drp = [e for e in f.elements if e.name == "PN05"]
    assert [(e.value, e.ts) for e in drp][:2] == [
        (0.1, ms(2026, 7, 1, 7, 0)),
        (0.2, ms(2026, 7, 1, 7, 5)),
    ]
    z = [e for e in f.elements if e.name == "Z"]
    assert z[11].value is None and z[10].value == 26.05 and z[11].ts == ms(2026, 7, 1, 7, 55)
    assert ("ZT", float(0x283)) in [(e.name, e.value) for e in f.elements]
    assert ("DT", 1.5) in [(e.name, e.value) for e in f.elements]


def test_ascii_manual_entry_version_and_confirmation() -> None:
    manual = one(asciiframe(0x35, "0004260701063000RGZS Z 12.35 "))
    assert manual.text == "Z 12.35" and [(e.name, e.value) for e in manual.elements] == [
        ("Z", 12.35)
    ]
    version = one(asciiframe(0x45, "0005260701063000ST 0012345678 V2.01 "))
    assert version.text == "V2.01"
    reply = sl651.confirmation(manual, ms(2026, 7, 1, 6, 31))
    # table 17: SOH · station · centre · password · function · 8 + length 16 · STX ·
    # serial 0004 · 260701063100 · EOT · CRC
    want = b"\x01" + b"0012345678" + b"01" + b"1234" + b"35" + b"8010" + b"\x02"
    want += b"0004260701063100" + b"\x04"
    assert reply == want + f"{crc16(want):04X}".encode()
    back = one(reply)
    assert back.header.downlink and back.header.ascii and back.serial == 4


def test_ascii_packets_and_mixed_stream() -> None:
    body = "0006260701063000ST 0012345678 P TT 2607010630 PT 184.8 "
    parts = [body[:20], body[20:]]
    frames = [
        sl651_ascii.encode(
            centre=1,
            station="0012345678",
            password="1234",
            function=0x32,
            body=p.encode(),
            packet=(2, k + 1),
            end=sl651.ETB if k == 0 else sl651.ETX,
        )
        for k, p in enumerate(parts)
    ]
    # table 18: 6 characters of packet total/sequence, counted in the length
    assert frames[0][19:30] == f"{6 + 20:04X}".encode() + b"\x16" + b"002001"
    hexf = line("beijing", 24)
    s: Stream[Frame] = Stream(take)
    out: list[Frame | Reject] = []
    for b in b"\x01\x02junk" + frames[0] + hexf + frames[1]:
        out.extend(s.feed(bytes([b])))
    got = [x for x in out if isinstance(x, Frame)]
    rejects = [x for x in out if isinstance(x, Reject)]
    assert b"".join(r.raw for r in rejects) == b"\x01\x02junk" and len(got) == 3
    assert [f.header.ascii for f in got] == [True, False, True]
    r = Reassembler()
    assert r.add(got[0]) is None and r.add(got[1]) is got[1]
    whole = r.add(got[2])
    assert whole is not None and values(whole) == [("PT", 184.8, ms(2026, 7, 1, 6, 30))]


@pytest.mark.parametrize(
    ("mutate", "reason", "offset"),
    [
        (lambda b: b[:-1] + (b"0" if b[-1:] != b"0" else b"1"), "CRC mismatch", None),
        (lambda b: b[:19] + b"4" + b[20:], "direction character", 19),
        (lambda b: b[:23] + b"\x05" + b[24:], "start character 05", 23),
    ],
)
def test_ascii_bad_frames_say_what_and_where(
    mutate: object, reason: str, offset: int | None
) -> None:
    raw = asciiframe(0x32, "0001260701063000ST 0012345678 P TT 2607010630 PT 184.8 ")
    assert callable(mutate)
    with pytest.raises(Sl651Error, match=reason) as e:
        decode_frame(mutate(raw))
    assert e.value.offset == (len(raw) - 4 if offset is None else offset)


def test_ascii_bad_value_names_the_byte() -> None:
    raw = asciiframe(0x32, "0001260701063000ST 0012345678 P TT 2607010630 PT 18x.8 ")
    with pytest.raises(Sl651Error, match=r"value '18x\.8' of PT is not a number") as e:
        decode_frame(raw)
    assert e.value.offset == 24 + raw[24:].index(b"18x.8")
    n, item = take(raw)
    assert n == len(raw) and isinstance(item, Reject) and item.kind == "malformed"
