"""`register.write` planned from a register map: the raw words worked by hand (two's
complement, IEEE 754 single, word order), the function chosen, what is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from drivers.modbus import commands
from drivers.modbus.config import ModbusTcpTransport, Register


def device(*regs: dict[str, object]) -> ModbusTcpTransport:
    return ModbusTcpTransport.model_validate(
        {"kind": "modbus_tcp", "host": "plc", "registers": list(regs)}
    )


T = device(
    {"metric": "offset_mm", "address": 1, "type": "int16", "writable": True},
    {"metric": "count", "address": 2, "type": "uint32", "word_order": "little", "writable": True},
    {"metric": "gain", "address": 4, "type": "float32", "writable": True},
    {"metric": "delta", "address": 6, "type": "int32", "writable": True},
    {"metric": "mode", "address": 8, "writable": True, "min": 1, "max": 4},
)


@pytest.mark.parametrize(
    ("args", "function", "address", "words"),
    [
        ({"metric": "offset_mm", "value": "-5"}, 6, 1, (0xFFFB,)),  # 2^16 - 5
        # 70000 = 0x0001_1170; little word order: low word first
        ({"metric": "count", "value": "70000"}, 16, 2, (0x1170, 0x0001)),
        ({"metric": "gain", "value": "1.5"}, 16, 4, (0x3FC0, 0x0000)),  # 1.5 = 0x3FC00000
        ({"metric": "delta", "value": "-2"}, 16, 6, (0xFFFF, 0xFFFE)),  # 2^32 - 2
        ({"metric": "mode", "value": "3", "function": "16"}, 16, 8, (3,)),
        ({"address": "0x8", "value": "4"}, 6, 8, (4,)),
    ],
)
def test_words_and_function(
    args: dict[str, str], function: int, address: int, words: tuple[int, ...]
) -> None:
    w = commands.plan("register.write", args, T)
    assert (w.function, w.address, w.words) == (function, address, words)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"metric": "mode", "value": "5"}, "mode = 5 is above its max 4"),
        ({"metric": "mode", "value": "0"}, "mode = 0 is below its min 1"),
        ({"metric": "offset_mm", "value": "40000"}, "40000 gives raw 40000, outside int16"),
        ({"metric": "count", "value": "1", "function": "6"}, "function 6 writes one"),
        ({"metric": "mode", "value": "1", "function": "5"}, "function='5' is not 6 or 16"),
        ({"metric": "mode", "value": "nan"}, "value='nan' is not a number"),
        ({"metric": "mode", "address": "8", "value": "1"}, "not both"),
        ({"metric": "mode", "value": "1", "unit": "2"}, "unknown parameter 'unit'"),
    ],
)
def test_refused_with_the_reason(args: dict[str, str], reason: str) -> None:
    with pytest.raises(commands.CommandError, match=reason.replace("(", r"\(")):
        commands.plan("register.write", args, T)


def test_only_holding_registers_can_be_writable() -> None:
    with pytest.raises(ValidationError, match=r"only holding registers \(function 3\)"):
        Register(metric="x", address=0, function=4, writable=True)
    with pytest.raises(ValidationError, match="set writable = true"):
        Register(metric="x", address=0, max=3)


def test_a_device_behind_a_dtu_takes_no_writes() -> None:
    from drivers.modbus.config import ModbusRtuTransport

    t = ModbusRtuTransport.model_validate(
        {
            "kind": "modbus_rtu",
            "dtu": "dtu-1",
            "unit": 1,
            "registers": [{"metric": "x", "address": 0, "writable": True}],
        }
    )
    with pytest.raises(commands.CommandError, match=r"behind a 4G DTU \(dtu-1\) are not sent"):
        commands.plan("register.write", {"metric": "x", "value": "1"}, t)
