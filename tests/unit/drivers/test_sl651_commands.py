"""SL651 commands to a station: the downlink frames laid out by hand from SL 651-2014's
tables (44, 52, 50, 67, 85 …), the parameter checks, and the answers that match them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.link.framing import crc16
from drivers.sl651 import commands
from drivers.sl651.codec import decode_frame
from drivers.sl651.commands import CommandError

BJ = ZoneInfo("Asia/Shanghai")
NOW = int(datetime(2026, 7, 1, 6, 31, 5, tzinfo=BJ).timestamp()) * 1000
TESTDATA = Path(__file__).resolve().parents[3] / "drivers" / "sl651" / "testdata"


def down(function: int, body: str) -> bytes:
    """Table 21 by hand: 7E7E · station · centre 01 · password · function · 8000|length ·
    STX · body · ENQ · CRC."""
    b = bytes.fromhex(body.replace(" ", ""))
    f = bytes.fromhex("7E7E 0012345678 01 1234") + bytes([function])
    f += (0x8000 | len(b)).to_bytes(2, "big") + b"\x02" + b + b"\x05"
    return f + crc16(f).to_bytes(2, "big")


def make(name: str, **args: str) -> bytes:
    return commands.frame(
        name, args, centre=1, station="0012345678", password="1234", now_ms=NOW, tz=BJ
    )


@pytest.mark.parametrize(
    ("name", "args", "function", "body"),
    [
        # table 67: the send time is the clock the station takes; serial 0 (6.6.2.4)
        ("clock.set", {}, 0x4A, "0000 260701063105"),
        ("clock.read", {}, 0x51, "0000 260701063105"),
        ("report.now", {}, 0x37, "0000 260701063105"),
        ("version", {}, 0x45, "0000 260701063105"),
        ("status", {}, 0x46, "0000 260701063105"),
        ("events", {}, 0x50, "0000 260701063105"),
        # table 44: start/end YYMMDDHH, 04 18 dhm, the element's identifier (PT N(6,1) -> 19)
        (
            "history",
            {"element": "PT", "start": "2026-07-01T00", "end": "2026-07-01T06", "step": "1h"},
            0x38,
            "0000 260701063105 26070100 26070106 0418 000100 2619",
        ),
        (
            "history",
            {"element": "DRP", "start": "2026-07-01T00", "end": "2026-07-01T02", "step": "0"},
            0x38,
            "0000 260701063105 26070100 26070102 0418 000000 F460",
        ),
        ("element.read", {"elements": "Z,VT"}, 0x3A, "0000 260701063105 3923 3812"),
        ("params.read", {"ids": "20,28"}, 0x43, "0000 260701063105 2008 2823"),
        ("config.read", {"ids": "02,0C"}, 0x41, "0000 260701063105 0228 0C08"),
        # table D.4: 20 N(2) = 6 h; 25 N(2,1) = 0.5 mm; 28 N(7,3) = -1.5 m: FF + 4 bytes
        (
            "params.set",
            {"20": "6", "25": "0.5", "28": "-1.5"},
            0x42,
            "0000 260701063105 2008 06 2509 05 282B FF00001500",
        ),
        ("config.set", {"0C": "2"}, 0x40, "0000 260701063105 0C08 02"),
    ],
)
def test_downlink_frames(name: str, args: dict[str, str], function: int, body: str) -> None:
    raw = make(name, **args)
    assert raw == down(function, body)
    frame, rest = decode_frame(raw)
    assert rest == b"" and frame.header.downlink and frame.serial == 0


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("reboot", {}, "unknown SL651 command 'reboot'"),
        (
            "params.set",
            {"20": "5"},
            "20 定时报时间间隔(h): 5 is not one of 1, 2, 3, 4, 6, 8, 12, 24",
        ),
        ("params.set", {"21": "60"}, "21 加报时间间隔(min): 60 is outside 0…59"),
        ("params.set", {"25": "0.25"}, "is not one of"),
        ("params.set", {"99": "1"}, "99 is not a running parameter of table D.4"),
        ("params.set", {"27": "x"}, "27 雨量加报阈值(mm): 'x' is not a number"),
        ("config.set", {"0C": "5"}, "0C 工作方式: '5' is not 1, 2, 3 or 4"),
        (
            "history",
            {"element": "XX", "start": "2026-07-01T00", "end": "2026-07-01T01"},
            "element='XX'",
        ),
        (
            "history",
            {"element": "PT", "start": "2026-07-01T05", "end": "2026-07-01T01"},
            "end is before start",
        ),
        (
            "history",
            {"element": "PT", "start": "2026-07-01", "end": "2026-07-01T01"},
            "start='2026-07-01' is not YYYY-MM-DDTHH",
        ),
        (
            "history",
            {"element": "PT", "start": "2026-07-01T00", "end": "2026-07-01T01", "step": "60m"},
            "outside 1…59m",
        ),
        ("report.now", {"x": "1"}, "report.now: unknown parameter 'x'"),
        ("params.read", {}, "give ids="),
    ],
)
def test_bad_commands_name_what_is_wrong(name: str, args: dict[str, str], message: str) -> None:
    with pytest.raises(CommandError) as e:
        make(name, **args)
    assert message in str(e.value)


def test_answers_from_the_fujian_examples() -> None:
    lines = [
        bytes.fromhex(line)
        for line in (TESTDATA / "sl651_frames_fujian.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    by_function = {decode_frame(d)[0].header.function: decode_frame(d)[0] for d in lines}
    clock = by_function[0x4A]  # sent 2212061436 28 by the station after setting its clock
    assert commands.answers("clock.set", clock) and not commands.answers("clock.read", clock)
    assert commands.answer_text(clock) == "遥测站时钟: 2022-12-06 14:36:28"
    assert commands.answer_text(by_function[0x45]) == "软件版本: V1.0.20220420"
    now = by_function[0x37]
    assert commands.answers("report.now", now)
    assert commands.answer_text(now) == "PJ=0.0mm; PT=0.0mm; Z=无数据m; VT=11.43V"
