"""DTU registration, heartbeats and the [[dtu]] / modbus_tcp / hj212 station-file checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.dtu.config import DtuListen, DtuSection
from drivers.dtu.link import Heartbeat, Identified, Unknown, WithHeartbeat, identify
from drivers.dtu.modbus import read_request
from drivers.hj212.config import Hj212Transport
from drivers.link.framing import Reject, Stream, crc16
from drivers.modbus import codec as modbus_rtu
from gateway.config.station import load_config
from gateway.core.errors import ConfigError


def dtu(id: str, registration: str, match: str = "exact", **kw: object) -> DtuSection:
    return DtuSection.model_validate(
        {
            "id": id,
            "name": id,
            "listen": DtuListen(port=1),
            "registration": registration,
            "registration_match": match,
            "protocol": "modbus_rtu",
            **kw,
        }
    )


DTUS = [
    dtu("imei", "860000000000001"),
    dtu("bin", "hex:FE0102"),
    dtu("pre", "ZJ-", "prefix"),
    dtu("pat", r"REG(\d{4})#", "pattern"),
]


@pytest.mark.parametrize(
    ("buf", "first", "want"),
    [
        (b"860000000000001", False, ("imei", 15)),
        (b"860000000000001\x02\x03", False, ("imei", 15)),  # data in the same packet
        (b"8600000", False, None),  # still arriving
        (b"\xfe\x01\x02", False, ("bin", 3)),
        (b"ZJ-12345", False, None),  # a prefix id runs on until the DTU pauses …
        (b"ZJ-12345", True, ("pre", 8)),
        (b"ZJ-12345\x02\x03\x00", False, ("pre", 8)),  # … or the instrument's bytes begin
        (b"ZJ-0042~~\x00", False, ("pre", 7)),  # an SL651 start (7E 7E)
        (b"REG0042#rest", False, ("pat", 8)),
    ],
)
def test_identify(buf: bytes, first: bool, want: tuple[str, int] | None) -> None:
    got = identify(buf, DTUS, first_packet=first)
    if want is None:
        assert got is None
    else:
        assert isinstance(got, Identified) and (got.dtu.id, got.consumed) == want


def test_unknown_registrations_are_shown_readably() -> None:
    got = identify(b"WHO-ARE-YOU", DTUS, first_packet=True)
    assert isinstance(got, Unknown) and got.shown() == "'WHO-ARE-YOU'"
    got = identify(b"\x01\x02\xff", DTUS, first_packet=True)
    assert isinstance(got, Unknown) and got.shown() == "hex:0102FF"
    # a pattern never matched, and 256 bytes without a decision, are unknown too
    assert isinstance(identify(b"REG12#", DTUS, first_packet=True), Unknown)
    assert isinstance(identify(b"ZJ-" + b"1" * 300, DTUS, first_packet=False), Unknown)


def test_heartbeats_dropped_between_frames_not_inside_them() -> None:
    request = read_request(2, 3, 0, 1)
    assert request == bytes.fromhex("020300000001") + bytes.fromhex("8439")  # CRC by hand below
    # CRC-16/Modbus of 02 03 00 00 00 01 is 0x3984, sent low byte first: 84 39
    take = WithHeartbeat(modbus_rtu.take, b"HB")
    s: Stream[modbus_rtu.ModbusFrame | Heartbeat] = Stream(take)
    items = s.feed(b"HB" + request + b"HB" + b"H")
    assert [type(i).__name__ for i in items] == ["Heartbeat", "ModbusFrame", "Heartbeat"]
    assert s.pending == 1  # "H" may be a heartbeat still arriving
    items = s.feed(b"B")
    assert [type(i).__name__ for i in items] == ["Heartbeat"]
    assert take.heartbeats == 3
    # "HB" as register data inside a frame is the instrument's, left alone
    body = bytes.fromhex("010302") + b"HB"
    frame = body + crc16(body).to_bytes(2, "little")
    items = Stream(WithHeartbeat(modbus_rtu.take, b"HB")).feed(frame)
    assert len(items) == 1 and isinstance(items[0], modbus_rtu.ModbusFrame)
    assert items[0].registers == (0x4842,)
    assert not any(isinstance(i, Reject) for i in items)


STATION = """
[station]
id = "t"
name = "站"
[[villages]]
id = "v"
name = "村"
[[points]]
id = "p"
name = "点"
village = "v"
[database]
path = "s.db"
{extra}
"""


def check(tmp_path: Path, extra: str) -> list[str]:
    p = tmp_path / "station.toml"
    p.write_text(STATION.format(extra=extra), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    return e.value.problems


def test_dtu_station_file_problems_name_the_key(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
[[dtu]]
id = "a"
name = "甲"
listen = { port = 15700 }
registration = "X1"
protocol = "sl651"
[[dtu]]
id = "a"
name = "乙"
listen = { port = 15700 }
registration = "X1"
heartbeat = "X1"
protocol = "modbus_rtu"
[[dtu]]
id = "c"
name = "丙"
listen = { port = 15701 }
registration = "(unclosed"
registration_match = "pattern"
protocol = "modbus_rtu"
[[devices]]
id = "g"
name = "表"
kind = "k"
point = "p"
metrics.x = { unit = "1", min = 0, max = 1 }
transport = { kind = "modbus_rtu", dtu = "a", unit = 1, registers = [{ metric = "x", address = 0 }] }
[[devices]]
id = "h"
name = "表2"
kind = "k"
point = "p"
metrics.x = { unit = "1", min = 0, max = 1 }
transport = { kind = "modbus_rtu", dtu = "nowhere", unit = 1, registers = [{ metric = "x", address = 0 }] }
""",
    )
    assert "dtu[1].id: duplicate id 'a'" in problems
    assert "dtu[1].registration: the same as DTU 'a' on port 15700" in problems
    assert "dtu[1].heartbeat: the same as the registration" in problems
    assert any(p.startswith("dtu[2].registration: not a regular expression") for p in problems)
    assert "devices[0].transport.dtu: DTU 'a' carries sl651, not modbus_rtu" in problems
    assert "devices[1].transport.dtu: unknown DTU 'nowhere' (no [[dtu]] with that id)" in problems


def test_modbus_rtu_names_a_port_or_a_dtu(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
[[devices]]
id = "g"
name = "表"
kind = "k"
point = "p"
metrics.x = { unit = "1", min = 0, max = 1 }
transport = { kind = "modbus_rtu", unit = 1, registers = [{ metric = "x", address = 0 }] }
""",
    )
    assert any(
        "devices[0].transport" in p and "either a serial `port` or a `dtu`" in p for p in problems
    )


def test_hj212_and_modbus_tcp_mappings_are_checked(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
[[devices]]
id = "gas"
name = "分析仪"
kind = "k"
point = "p"
metrics.so2 = { unit = "mg/m3", min = 0, max = 1 }
transport = { kind = "hj212", mn = "M1", pollutants = { a21026 = "so2", a21005 = "co" }, hourly = { "a21026-Max" = "so2_max" } }
[[devices]]
id = "plc"
name = "PLC"
kind = "k"
point = "p"
metrics.x = { unit = "1", min = 0, max = 1 }
transport = { kind = "modbus_tcp", host = "10.0.0.5", registers = [{ metric = "y", address = 0 }] }
""",
    )
    assert "devices[0].transport.pollutants.a21005: metric 'co' is not configured" in problems
    assert "devices[0].transport.hourly.a21026-Max: metric 'so2_max' is not configured" in problems
    assert "devices[1].transport.registers[0].metric: metric 'y' is not configured" in problems
    unit = """
[[devices]]
id = "plc"
name = "PLC"
kind = "k"
point = "p"
metrics.x = { unit = "1", min = 0, max = 1 }
transport = { kind = "modbus_tcp", host = "10.0.0.5", unit = 300, registers = [{ metric = "x", address = 0 }] }
"""
    assert check(tmp_path, unit) == [
        "devices[0].transport.unit: Input should be less than or equal to 255"
    ]


def test_two_analysers_with_one_mn(tmp_path: Path) -> None:
    one = """
[[devices]]
id = "gas{n}"
name = "分析仪{n}"
kind = "k"
point = "p"
metrics.so2 = {{ unit = "mg/m3", min = 0, max = 1 }}
transport = {{ kind = "hj212", mn = "M1", pollutants = {{ a21026 = "so2" }} }}
"""
    assert check(tmp_path, one.format(n=1) + one.format(n=2)) == [
        "devices[1].transport.mn: 'M1' is already devices[0]'s"
    ]


def test_hj212_metric_for_each_statistic() -> None:
    t = Hj212Transport(
        kind="hj212",
        mn="M",
        pollutants={"a21026": "so2"},
        hourly={"a21026": "so2_avg", "a21026-Max": "so2_max"},
    )
    assert t.metric("2011", "a21026", "Rtd") == "so2"
    assert t.metric("2011", "a21026", "ZsRtd") is None  # not asked for
    assert t.metric("2061", "a21026", "Avg") == "so2_avg"
    assert t.metric("2061", "a21026", "Max") == "so2_max"
    assert t.metric("2061", "a21026", "Min") is None
    assert t.metric("2051", "a21026", "Avg") is None  # minute data not mapped
