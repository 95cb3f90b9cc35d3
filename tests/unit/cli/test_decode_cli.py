"""`stationgw decode`: the names, JSON keys and exit codes technicians rely on."""

from __future__ import annotations

import json

import pytest

from drivers.cigem import codec as cigem
from drivers.gb26875 import codec as gb26875
from gateway.cli import main

EXAMPLE = "7E7E000081120005FFFF3200200225B9260701063006F1F1008112000550F0F0260701063026190018483812120003C648"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["decode", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_sl651_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "sl651", EXAMPLE)
    assert code == 0
    assert (out["station"], out["function"], out["crc"]) == ("0081120005", "32", "C648")
    assert out["readings"] == [
        {"element": "PT", "code": "26", "value": 184.8, "unit": "mm", "ts": "2026-06-30T22:30:00Z"},
        {"element": "VT", "code": "38", "value": 12.0, "unit": "V", "ts": "2026-06-30T22:30:00Z"},
    ]


# Fujian line 18 (drivers/sl651/testdata): hourly report, F0F0 2212021220 before F4 and F5
FUJIAN_34 = (
    "7E7E0110000000060000340068022F7B221202131525F1F1100000000648F0F02212021220F4600000000000"
    "00000000000000F0F022120213152619003196F0F02212021220F55C0A2D0A2D0A2D0A2D0A2D0A2D0A2D0A2D"
    "0A2D0A2D0AEC0AECF0F0221202131539230002896020190000003812131603329C"
)


def test_sl651_arrays_each_value_at_its_own_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "sl651", FUJIAN_34)
    assert code == 0 and out["encoding"] == "HEX/BCD"
    f5 = [r for r in out["readings"] if r["code"] == "F5"]  # type: ignore[union-attr,index]
    # 12:20 Beijing is the first value's time: 04:20Z, 04:25Z … 05:15Z
    assert [r["ts"] for r in f5] == [
        f"2022-12-02T{4 + (20 + 5 * k) // 60:02d}:{(20 + 5 * k) % 60:02d}:00Z" for k in range(12)
    ]
    assert [r["array_index"] for r in f5] == list(range(12))
    assert out["variants"] == ["F5 5C in place of F5 C0 (array definition byte)"]


def test_sl651_ascii_frame(capsys: pytest.CaptureFixture[str]) -> None:
    from drivers.link.framing import crc16

    frame = (
        b"\x010100123456781234320037\x020001260701063000ST 0012345678 P TT 2607010630 PT 184.8 \x03"
    )
    frame += f"{crc16(frame):04X}".encode()
    code, out = run(capsys, "sl651", frame.hex())
    assert code == 0 and out["encoding"] == "ASCII" and out["station_type"] == "50"
    assert out["readings"] == [
        {"element": "PT", "code": "26", "value": 184.8, "unit": "mm", "ts": "2026-06-30T22:30:00Z"}
    ]


def test_stdin_and_trailing_bytes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(EXAMPLE[:40] + "\n" + EXAMPLE[40:] + "7E\n"))
    code, out = run(capsys, "sl651", "-")
    assert code == 0
    assert out["trailing"]["offset"] == 49 and out["trailing"]["hex"] == "7E"  # type: ignore[index]


@pytest.mark.parametrize(
    ("protocol", "frame", "offset", "words"),
    [
        ("sl651", EXAMPLE[:-1] + "9", 47, "CRC mismatch"),
        ("sl651", EXAMPLE[:60], 30, "truncated"),
        ("sl651", "7E7Ex1", 2, "not a hex digit"),
        ("modbus-rtu", "02030000000305F9", 6, "CRC mismatch"),
        ("gb26875", "4040" + "00" * 10, 12, "shorter than a header"),
        ("cigem", "0200057B7D", 1, "length field says 5"),
    ],
)
def test_bad_frames_exit_2_with_what_and_where(
    capsys: pytest.CaptureFixture[str], protocol: str, frame: str, offset: int, words: str
) -> None:
    code, out = run(capsys, protocol, frame)
    assert code == 2
    assert out["offset"] == offset and words in str(out["error"])


def test_modbus_request_and_response(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "modbus-rtu", "02030000000305F8")
    assert code == 0 and (out["kind"], out["unit"], out["address"], out["count"]) == (
        "request",
        2,
        0,
        3,
    )
    from drivers.link.framing import crc16

    body = bytes.fromhex("0203060001000207D0")
    frame = body + crc16(body).to_bytes(2, "little")
    code, out = run(capsys, "modbus-rtu", frame.hex())
    assert code == 0 and out["kind"] == "response"
    assert [r["value"] for r in out["readings"]] == [1, 2, 2000]  # type: ignore[union-attr]


def test_gb26875_fire_alarm(capsys: pytest.CaptureFixture[str]) -> None:
    desc = "3号楼烟感".encode("gb18030").ljust(31, b"\x00")
    obj = (
        bytes([1, 1, 21])
        + (305).to_bytes(4, "little")
        + (0b11).to_bytes(2, "little")
        + desc
        + bytes([0, 30, 6, 1, 7, 26])
    )
    frame = gb26875.encode(
        serial=7,
        sent_at=1782858600000,
        source="0A0000000001",
        destination="000000000000",
        command=2,
        data=bytes([2, 1]) + obj,
    )
    code, out = run(capsys, "gb26875", frame.hex())
    assert code == 0 and out["fire_alarm"] is True and out["command_name"] == "send data"
    (r,) = out["readings"]  # type: ignore[misc]
    assert r["flags"] == ["normal", "fire_alarm"] and r["description"] == "3号楼烟感"
    assert r["ts"] == "2026-06-30T22:30:00Z"


def test_cigem_timestamped(capsys: pytest.CaptureFixture[str]) -> None:
    payload = cigem.encode(
        2,
        {
            "5300001": {
                "L1_LF_1": {"2026-04-05T08:23:10.000Z": 0.2136},
                "L1_QJ_1": {"2026-04-05T08:23:10.000Z": {"X": 0.5, "angle": 1.25}},
            }
        },
    )
    code, out = run(capsys, "cigem", payload.hex())
    assert code == 0 and out["dev_id"] == "5300001"
    assert [(r["element"], r["value"], r["unit"], r["ts"]) for r in out["readings"]] == [  # type: ignore[union-attr]
        ("L1_LF_1", 0.2136, "mm", "2026-04-05T08:23:10Z"),
        ("L1_QJ_1.X", 0.5, "°", "2026-04-05T08:23:10Z"),
        ("L1_QJ_1.angle", 1.25, "°", "2026-04-05T08:23:10Z"),
    ]
