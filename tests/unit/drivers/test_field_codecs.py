"""GB/T 26875.3, Modbus RTU, CIGEM and handheld codecs: vectors from the stubs, byte-by-byte
feeds, garbage and corruption between valid frames."""

from __future__ import annotations

import json

import pytest

from drivers.cigem import codec as cigem
from drivers.gb26875 import codec as gb26875
from drivers.handheld import codec as handheld
from drivers.link.framing import Reject, Stream, crc16
from drivers.modbus import codec as modbus_rtu
from firmware_stubs import alarm_panel, cigem_device, handheld_device

AT = 1782858600000  # 2026-07-01 06:30 Beijing
PANEL = "0A0000000001"


def feed_bytewise(take: object, data: bytes) -> list[object]:
    s: Stream[object] = Stream(take)  # type: ignore[arg-type]
    out: list[object] = []
    for b in data:
        out.extend(s.feed(bytes([b])))
    return out


def test_gb26875_stub_frames_decode_and_survive_garbage_bytewise() -> None:
    a = alarm_panel.system_state(PANEL, 1, AT)
    b = alarm_panel.component(PANEL, 2, AT, 305, 0b011, "3号楼烟感")
    bad = b[:-3] + bytes([b[-3] ^ 1]) + b[-2:]
    out = feed_bytewise(gb26875.take, b"@\x00##" + a + b[:20] + bad + b + b"@")
    frames = [x for x in out if isinstance(x, gb26875.Frame)]
    assert [f.serial for f in frames] == [1, 2]
    kinds = [x.kind for x in out if isinstance(x, Reject)]
    assert kinds[0] == "garbage" and "crc" in kinds
    alarm = frames[1].statuses[0]
    assert alarm.fire_alarm and alarm.description == "3号楼烟感" and alarm.ts == AT
    assert alarm.component_address == 305 and frames[0].statuses[0].flags == ["normal"]


def test_gb26875_confirm_swaps_addresses_and_keeps_serial() -> None:
    f, _ = gb26875.decode_frame(alarm_panel.component(PANEL, 77, AT, 1, 2, "x"))
    c, rest = gb26875.decode_frame(gb26875.confirm(f, AT + 1000))
    assert (c.command, c.serial, c.source, c.destination, rest) == (
        3,
        77,
        f.destination,
        PANEL,
        b"",
    )


def test_gb26875_bad_object_count_is_malformed_with_offset() -> None:
    frame = gb26875.encode(
        serial=1,
        sent_at=AT,
        source=PANEL,
        destination="00" * 6,
        command=2,
        data=bytes([2, 2]) + b"\x00" * 46,
    )
    with pytest.raises(gb26875.Gb26875Error, match="2 objects of type 2 need 94 bytes") as e:
        gb26875.decode_frame(frame)
    assert e.value.offset == 27


def rtu(hex_body: str) -> bytes:
    body = bytes.fromhex(hex_body)
    return body + crc16(body).to_bytes(2, "little")


def test_modbus_stream_bytewise_with_noise() -> None:
    request = bytes.fromhex("02030000000305F8")
    response = rtu("020306000100020003")
    exception = rtu("028302")
    out = feed_bytewise(modbus_rtu.take, b"\xff" + request + response + b"\x00\x00" + exception)
    frames = [x for x in out if isinstance(x, modbus_rtu.ModbusFrame)]
    assert [(f.kind, f.registers, f.exception) for f in frames] == [
        ("request", (), None),
        ("response", (1, 2, 3), None),
        ("exception", (), 2),
    ]


def test_modbus_word_order_and_types_are_the_configs_not_the_codecs() -> None:
    f = modbus_rtu.decode_frame(rtu("0210000400020400010002"))
    assert (f.kind, f.address, f.count, f.registers) == ("request", 4, 2, (1, 2))


def test_cigem_plain_and_timestamped_forms() -> None:
    plain = cigem.decode(cigem.encode(1, {"d1": {"L1_LF_1": 0.5, "L3_YL_1": {"value": 1.5}}}))
    assert [(v.name, v.ts, v.value, v.unit) for v in plain.values] == [
        ("L1_LF_1", None, 0.5, "mm"),
        ("L3_YL_1.value", None, 1.5, "mm"),
    ]
    stub = cigem.decode(cigem_device.payload("d2", cigem_device.samples(2, AT)))
    names = [v.name for v in stub.values]
    assert names.count("L1_LF_1") == 2 and "S1_ZT_1.sw_version" in names
    with pytest.raises(cigem.CigemError, match="L1_LF_1: list is not a number"):
        cigem.decode(cigem.encode(1, {"d": {"L1_LF_1": [1]}}))
    with pytest.raises(cigem.CigemError, match="timestamp 'yesterday' is not ISO 8601"):
        cigem.decode(cigem.encode(2, {"d": {"L1_LF_1": {"yesterday": 1}}}))


def test_handheld_dock_lines_bytewise() -> None:
    records = [handheld_device.record(i, AT + i) for i in range(3)]
    out = feed_bytewise(handheld.take, handheld_device.dock_lines(records, garbage=True))
    got = [x.id for x in out if isinstance(x, handheld.Record)]
    assert got == ["HH01-000000", "HH01-000001", "HH01-000002"]
    assert isinstance(out[-1], handheld.End)
    (bad,) = [x for x in out if isinstance(x, Reject)]
    assert bad.kind == "malformed" and "Invalid JSON" in bad.reason


def test_handheld_times_and_problems() -> None:
    r = dict(handheld_device.record(1, AT), at="2026-07-01T06:30:00+08:00")
    (rec,) = handheld.decode(json.dumps(r).encode())
    assert rec.at == AT and rec.items[0].item == "cracks"
    with pytest.raises(
        handheld.HandheldError, match="at: Value error, 1700000 is before 2000-01-01"
    ):
        handheld.decode(json.dumps(dict(r, at=1_700_000)).encode())
    with pytest.raises(
        handheld.HandheldError,
        match=r"items\[0\]\.result: Input should be 'ok', 'abnormal' or 'na'",
    ):
        handheld.decode(json.dumps(dict(r, items=[{"item": "x", "result": "bad"}])).encode())


@pytest.mark.parametrize(
    "fault", ["garbage", "bad_length", "truncated", "unknown", "repeat", "silence"]
)
def test_cigem_stub_faults_are_refused_or_recognised(fault: str) -> None:
    from drivers.cigem import codec as cigem
    from firmware_stubs import cigem_device

    batch = cigem_device.samples(3, 1_780_000_000_000)
    sent = cigem_device.faulty(fault, "geo-01", batch)
    good = cigem_device.payload("geo-01", batch)
    if fault == "silence":
        assert sent == []
        return
    assert sent[-1] == good  # the good payload after the fault still arrives
    if fault in ("garbage", "bad_length", "truncated"):
        with pytest.raises(cigem.CigemError):
            cigem.decode(sent[0])
    assert cigem.decode(good) is not None
