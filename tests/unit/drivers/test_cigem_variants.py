"""CIGEM payloads as field devices send them: bare JSON, a type byte without the length,
type 3 files. Bytes and expected values worked by hand from the layouts in
drivers/cigem/testdata/README.md (sources named there), not from the decoder's output."""

from __future__ import annotations

from datetime import UTC

import pytest

from drivers.cigem import codec as cigem
from drivers.cigem.describe import describe
from firmware_stubs import cigem_device

PLAIN = b'{"53000012":{"L1_LF_1":0.21}}'  # 29 bytes (0x1D)
# the timestamped example of the reference (protocols.md): 2026-04-05 08:23:10 UTC is day
# 20,548 since 1970-01-01 (56 years with 14 leap days, then 31 + 28 + 31 + 4 days),
# 20,548 × 86,400 + 30,190 s = 1,775,377,390 s
TIMED = b'{"53000012":{"L1_LF_1":{"2026-04-05T08:23:10.000Z":0.2136}}}'
T0 = 1_775_377_390_000
DESC = b'{"53000012":{"ds_id":"image","at":"2026-04-05T08:23:10Z"}}'  # 58 bytes (0x3A)
JPEG = bytes.fromhex("FFD8FFE000104A464946000101FFD9")  # 15 bytes (0x0F)


def values(m: cigem.Message) -> list[tuple[str, int | None, float | str]]:
    return [(v.name, v.ts, v.value) for v in m.values]


def test_the_standard_layout_has_no_variant() -> None:
    m = cigem.decode(bytes.fromhex("01001D") + PLAIN)
    assert (m.type, m.dev_id, m.variant) == (1, "53000012", None)
    assert values(m) == [("L1_LF_1", None, 0.21)]


@pytest.mark.parametrize(
    ("payload", "kind", "expected", "variant"),
    [
        (PLAIN, 1, [("L1_LF_1", None, 0.21)], cigem.BARE_JSON),
        (TIMED, 2, [("L1_LF_1", T0, 0.2136)], cigem.BARE_JSON),
        # type byte 01/02 and `{` at once: the length would read 7B 22 = 31,522 bytes
        (b"\x01" + PLAIN, 1, [("L1_LF_1", None, 0.21)], cigem.TYPE_BYTE_ONLY),
        (b"\x02" + TIMED, 2, [("L1_LF_1", T0, 0.2136)], cigem.TYPE_BYTE_ONLY),
    ],
    ids=["bare plain", "bare timestamped", "type byte plain", "type byte timestamped"],
)
def test_variants_are_read_and_named(
    payload: bytes, kind: int, expected: list[tuple[str, int | None, float]], variant: str
) -> None:
    m = cigem.decode(payload)
    assert (m.type, m.dev_id, m.variant) == (kind, "53000012", variant)
    assert values(m) == expected


def test_what_stays_ambiguous_or_broken_is_refused_with_its_place() -> None:
    mixed = b'{"d":{"L1_LF_1":{"2026-04-05T08:23:10Z":0.2},"L1_QJ_1":{"X":1.0}}}'
    with pytest.raises(cigem.CigemError, match=r"mixes timestamped sensors \(L1_LF_1\)"):
        cigem.decode(mixed)
    # a type byte, then neither a fitting length (7B 6F = 31,599; "ops" is 3 bytes) nor JSON
    with pytest.raises(cigem.CigemError, match="length field says 31599 JSON bytes, 3 follow") as e:
        cigem.decode(b"\x01{oops")
    assert e.value.offset == 1
    with pytest.raises(cigem.CigemError, match="invalid JSON") as e:
        cigem.decode(b'{"d": 1')
    assert e.value.offset == 7  # the end of the bytes, where JSON wanted more


def test_a_type_3_file_with_its_descriptor() -> None:
    payload = bytes.fromhex("03003A") + DESC + bytes.fromhex("0000000F") + JPEG
    m = cigem.decode(payload)
    assert (m.type, m.dev_id, m.values, m.variant) == (3, "53000012", (), None)
    assert m.file == cigem.File("image", 1_775_377_390_000, JPEG)
    assert describe(payload, UTC, 0)["file"] == {
        "name": "image",
        "at": "2026-04-05T08:23:10Z",
        "bytes": 15,
        "jpeg": True,
    }
    # the stub builds this layout (here without `at`: a 30-byte descriptor, 0x1E)
    assert cigem_device.file_payload("53000012", "image", None, JPEG) == (
        bytes.fromhex("03001E")
        + b'{"53000012":{"ds_id":"image"}}'
        + bytes.fromhex("0000000F")
        + JPEG
    )
    short = bytes.fromhex("03003A") + DESC + bytes.fromhex("0000000E") + JPEG
    with pytest.raises(cigem.CigemError, match="file length says 14 bytes, 15 follow") as e:
        cigem.decode(short)
    assert e.value.offset == 61  # 3 + the 58-byte descriptor: where the file length is
    with pytest.raises(cigem.CigemError, match="shorter than the 58-byte descriptor"):
        cigem.decode(bytes.fromhex("03003A") + DESC[:20])
    with pytest.raises(cigem.CigemError, match=r"payload type 4 \(firmware\) carries no"):
        cigem.decode(bytes.fromhex("040002") + b"{}")


# --- $cmd downlinks and their answers (drivers/cigem/commands.py) -------------------------
# spelled as the public firmware's comments and sprintf formats spell them (testdata README)


def test_cmd_answers_as_the_firmware_sends_them() -> None:
    from drivers.cigem import commands

    assert commands.answer(b"$cmd=settime&result=succ") == ("clock.set", True, "成功 (succ)")
    assert commands.answer(b"$cmd=reboot&result=fail") == (
        "reboot",
        False,
        "设备回复失败 (result=fail)",
    )
    # one firmware writes " & " around its separators
    assert commands.answer(b"$cmd=setsensortime & result=succ & msgid=B6ZmaDbzA") == (
        "interval.set",
        True,
        "成功 (succ)",
    )
    assert commands.answer(b"$cmd=reqtime&time=2026-04-05 08:23:10") == (
        "clock.read",
        True,
        "设备时钟: 2026-04-05 08:23:10",
    )
    assert commands.answer(b'$cmd=getstatus&state={"temp":42.00}') == (
        "status",
        True,
        '设备状态: {"temp":42.00}',
    )
    assert commands.answer(b"$cmd=upgrade&md5=x") is None  # not a command of ours
    assert commands.answer(b"\xff\xfe") is None
