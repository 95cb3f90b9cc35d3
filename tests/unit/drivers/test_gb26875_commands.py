"""GB/T 26875.3 centre requests: application data written out by hand (type, count 1,
object; times s m h D M Y in binary, addresses little-endian as in the uploads)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from drivers.gb26875 import commands

BJ = ZoneInfo("Asia/Shanghai")


def test_the_application_data_of_each_request() -> None:
    at = int(datetime(2026, 7, 1, 6, 30, 15, tzinfo=BJ).timestamp() * 1000)
    # 15 s = 0F, 30 min = 1E, 06 h, day 01, month 07, year 26 = 1A
    assert commands.application_data("clock.set", {}, at, BJ) == bytes.fromhex("5A 01 0F1E0601071A")
    args = {"system_type": "1", "system_address": "2", "component_address": "0x01020304"}
    assert commands.application_data("component.read", args, at, BJ) == bytes.fromhex(
        "3E 01 01 02 04030201"
    )
    args = {"system_type": "10", "system_address": "255"}
    assert commands.application_data("system.read", args, at, BJ) == bytes.fromhex("3D 01 0A FF")


@pytest.mark.parametrize(
    ("name", "args", "reason"),
    [
        ("system.read", {"system_type": "256", "system_address": "1"}, "outside 0…255"),
        ("system.read", {"system_type": "x", "system_address": "1"}, "'x' is not a whole number"),
        ("system.read", {"system_type": "1", "system_address": "1", "zone": "3"}, "'zone'"),
        ("component.read", {"system_type": "1", "system_address": "1"}, "component_address=…"),
        ("inspect", {}, "unknown GB/T 26875.3 command 'inspect'"),
    ],
)
def test_refused_with_the_reason(name: str, args: dict[str, str], reason: str) -> None:
    with pytest.raises(commands.CommandError, match=reason):
        commands.application_data(name, args, 0, BJ)
