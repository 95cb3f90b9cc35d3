"""HJ 212-2017 codec against the standard's example and other implementations' frames.

Expected values were worked out by hand from the frame text (drivers/hj212/testdata/
README.md names each source and shows the arithmetic), never from this decoder."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.hj212 import codec
from drivers.hj212.codec import Frame, crc16, decode_frame, take
from drivers.link.framing import Reject, Stream
from gateway.cli import main

BJ = ZoneInfo("Asia/Shanghai")
FRAMES = {
    name: text.encode()
    for name, text in (
        line.split(" ", 1)
        for line in (Path(codec.__file__).parent / "testdata" / "frames.txt")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    )
}


def wire(name: str) -> bytes:
    return FRAMES[name] + b"\r\n"


def frame(name: str) -> Frame:
    n, item = take(wire(name))
    assert isinstance(item, Frame), item
    assert n == len(wire(name))
    return item


def test_crc_is_the_standards_not_modbus() -> None:
    segment = b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    assert len(segment) == 101
    assert crc16(segment) == 0x1C80
    assert codec._crc16_modbus(segment) == 0x0759


def test_every_good_frame_checks() -> None:
    good = [n for n in FRAMES if n not in ("bad-crc", "modbus-crc")]
    assert len(good) == 9
    for name in good:
        f = frame(name)
        assert int(FRAMES[name][2:6]) == len(f.raw) - 12


def test_standard_example_header() -> None:
    f = frame("std-1062")
    assert (f.qn, f.st, f.cn, f.pw, f.mn, f.flag) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
        5,
    )
    assert f.cp == (("RtdInterval", "30"),)
    assert f.reply_wanted and f.version == 1 and f.layout == "2017"
    assert codec.readings(f, BJ) == []  # not data


def test_real_time_2011_values_and_time() -> None:
    f = frame("rt-2011")
    assert f.flag == 4 and not f.reply_wanted
    got = {(c, s): (v, ts, fl) for c, s, v, ts, fl in codec.readings(f, BJ)}
    ts = 1536887160000  # 2018-09-14T01:06:00Z = 09:06:00 Beijing
    assert got[("a34001", "Rtd")] == (67.04, ts, "N")
    assert got[("a34004", "Rtd")] == (39.6, ts, "N")
    assert got[("Leq", "Rtd")] == (60.97, ts, "N")
    assert got[("a01008", "Rtd")] == (335.0, ts, "N")
    assert len(got) == 9


def test_hourly_2061_answer_asked_for() -> None:
    f = frame("hour-2061")
    values = codec.readings(f, BJ)
    assert [(c, s, v) for c, s, v, _, _ in values][:2] == [
        ("a34006", "Avg", 2.697),
        ("a34007", "Avg", 7.966),
    ]
    assert {ts for *_, ts, _ in values} == {1569333600000}  # 2019-09-24T14:00:00Z
    answer = codec.data_answer(f)
    segment = b"QN=20190925181031464;ST=91;CN=9014;PW=BF470F88957588DE902D1A52;MN=Z13401000010301;Flag=4;CP=&&&&"
    assert answer == b"##0096" + segment + b"%04X\r\n" % crc16(segment)
    assert len(segment) == 96


def test_minute_2051_and_daily_2031() -> None:
    m = {(c, s): v for c, s, v, _, _ in codec.readings(frame("min-2051"), BJ)}
    assert (m[("a21026", "Avg")], m[("a21005", "Avg")], m[("a01001", "Avg")]) == (6, 0.427, 17)
    d = codec.readings(frame("day-2031"), BJ)
    assert [(c, s, v) for c, s, v, _, _ in d[:3]] == [
        ("LAMPBLACK", "Avg", 6.23),
        ("LAMPBLACK", "Max", 9.66),
        ("LAMPBLACK", "Min", 5.11),
    ]
    assert d[0][3] == 1565683080000  # 2019-08-13T07:58:00Z


def test_2005_layout_accepted() -> None:
    f = frame("old-2011")
    assert f.layout == "2005" and f.qn is None and f.flag is None and not f.reply_wanted
    got = {c: (v, ts, fl) for c, _, v, ts, fl in codec.readings(f, BJ)}
    assert got == {
        "B01": (36.91, 1471970297000, None),  # 2016-08-23T16:38:17.000Z
        "011": (231.0, 1471970297000, "N"),
        "060": (1.803, 1471970297000, "N"),
    }
    old = codec.readings(frame("old-2051"), BJ)
    assert [(c, s, v) for c, s, v, _, _ in old[:4]] == [
        ("B01", "Min", 895.13),
        ("B01", "Avg", 909.87),
        ("B01", "Max", 932.28),
        ("B01", "Cou", 54.59),
    ]


def test_abnormal_flags_kept() -> None:
    values = codec.readings(frame("old-2011-fault"), BJ)
    flagged = {(c, s): fl for c, s, _, _, fl in values}
    assert flagged[("S01", "Rtd")] == "D" and flagged[("B02", "Rtd")] == "D"
    assert flagged[("01", "ZsRtd")] == "D"  # the -Flag belongs to the pollutant, 01


@pytest.mark.parametrize(
    ("name", "words", "offset"),
    [
        ("bad-crc", "frame says 48C0, bytes give BC81", 193),
        ("modbus-crc", "frame says 2BE2, bytes give D581 (that is the CRC-16/Modbus", 130),
    ],
)
def test_published_bad_crcs(name: str, words: str, offset: int) -> None:
    n, item = take(wire(name))
    assert isinstance(item, Reject) and item.kind == "crc"
    assert words in item.reason and item.offset == offset == 6 + int(FRAMES[name][2:6])
    assert n == len(wire(name))


def test_stream_keeps_neighbours_of_bad_frames_byte_by_byte() -> None:
    data = (
        b"AT+OK\r\n"
        + wire("rt-2011")
        + wire("bad-crc")
        + b"##00x9garbage"
        + wire("hour-2061")
        + b"##9999"
        + wire("old-2011")
        + wire("min-2051")[:50]
    )
    s: Stream[Frame] = Stream(take)
    items = []
    for i in range(len(data)):
        items += s.feed(data[i : i + 1])
    frames = [i for i in items if isinstance(i, Frame)]
    assert [f.cn for f in frames] == ["2011", "2061", "2011"]
    rejects = [i for i in items if isinstance(i, Reject)]
    # "##00x9" is cut at its bad length field; "garbage" then waits for the next ##
    assert [r.kind for r in rejects] == ["garbage", "crc", "malformed", "garbage", "malformed"]
    assert rejects[0].offset == 0 and len(rejects[0].raw) == 7
    start_bad = 7 + len(wire("rt-2011"))
    assert rejects[1].offset == start_bad + 6 + 187
    assert "not 4 digits" in rejects[2].reason
    assert rejects[3].raw == b"garbage"
    assert "exceeds 1024" in rejects[4].reason
    assert s.pending == 50
    partial = s.flush("connection closed")
    assert partial is not None and partial.kind == "truncated"


def test_length_that_lies_and_missing_crlf() -> None:
    good = wire("rt-2011")
    longer = b"##0390" + good[6:]  # says 14 bytes more than there are
    s: Stream[Frame] = Stream(take)
    items = s.feed(longer + wire("hour-2061"))
    assert isinstance(items[0], Reject) and "length (390) says the segment ends" in items[0].reason
    assert items[0].raw == longer
    assert isinstance(items[1], Frame) and items[1].cn == "2061"
    # bytes arriving one by one: the next frame's end shows the length lied
    fed: list[Frame | Reject] = []
    s = Stream(take)
    for b in longer + wire("hour-2061"):
        fed += s.feed(bytes([b]))
    assert isinstance(fed[0], Reject) and "length says 390 bytes" in fed[0].reason
    assert isinstance(fed[1], Frame) and fed[1].cn == "2061"
    no_crlf = good[:-2] + b"XX" + wire("min-2051")
    items = Stream(take).feed(no_crlf)
    assert isinstance(items[0], Reject) and "CR LF" in items[0].reason
    assert isinstance(items[-1], Frame) and items[-1].cn == "2051"


def test_malformed_segment_names_the_offset() -> None:
    seg = b"QN=20240101000000000;ST=22;CN=2011;PW=1;MN=X;Flag=4;CP=&&DataTime=20240101000000;a21026-Rtd&&"
    _, item = take(codec.encode(seg.decode()))
    assert isinstance(item, Reject) and item.kind == "malformed"
    assert "not key=value" in item.reason and item.offset == 6 + seg.index(b"a21026-Rtd")
    with pytest.raises(codec.Hj212Error, match="not yyyyMMddHHmmss"):
        codec.readings(
            decode_frame(codec.encode("ST=22;CN=2011;PW=1;MN=X;CP=&&DataTime=2024;a-Rtd=1&&"))[0],
            BJ,
        )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_take_never_raises(data: bytes) -> None:
    s: Stream[Frame] = Stream(take)
    s.feed(data)
    s.feed(wire("rt-2011"))
    s.flush("end")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][0-9]{5}", fullmatch=True),
            st.decimals(min_value=-1e6, max_value=1e6, places=3, allow_nan=False),
            st.sampled_from("NFMSDCTB"),
        ),
        min_size=1,
        max_size=20,
        unique_by=lambda t: t[0],
    )
)
def test_encoded_values_come_back(values: list[tuple[str, object, str]]) -> None:
    cp = ";".join(f"{c}-Rtd={v},{c}-Flag={f}" for c, v, f in values)
    seg = f"QN=20240101000000000;ST=22;CN=2011;PW=123456;MN=M1;Flag=5;CP=&&DataTime=20240101000000;{cp}&&"
    f, rest = decode_frame(codec.encode(seg))
    assert rest == b""
    got = [(c, str(v), fl) for c, _, v, _, fl in codec.readings(f, BJ)]
    assert [(c, fl) for c, _, fl in got] == [(c, fl) for c, _, fl in values]
    assert [float(v) for _, v, _ in got] == [float(str(v)) for _, v, _ in values]


def test_decode_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "hj212", FRAMES["hour-2061"].decode() + "\\r\\n"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["cn"], out["cn_name"], out["flag"], out["reply_wanted"]) == (
        "2061",
        "hourly data",
        5,
        True,
    )
    assert out["reply"].startswith("##0096QN=20190925181031464;ST=91;CN=9014;")
    assert out["readings"][0] == {
        "element": "a34006-Avg",
        "value": 2.697,
        "unit": None,
        "ts": "2019-09-24T14:00:00Z",
        "flag": "N",
        "flag_name": "normal",
    }
    assert main(["decode", "hj212", FRAMES["bad-crc"].decode()]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["offset"] == 193 and "bytes give BC81" in err["error"]


@pytest.mark.parametrize("name", [n for n in FRAMES if n not in ("bad-crc", "modbus-crc")])
def test_decode_cli_takes_every_public_frame(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "hj212", FRAMES[name].decode()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["crc"] == FRAMES[name][-4:].decode().upper()
    assert out["length"] == int(FRAMES[name][2:6])
