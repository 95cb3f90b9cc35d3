"""Coverage-guided fuzzing of the codecs with atheris (run by tests/unit/drivers/test_atheris.py).

    python -m tests.fuzz_harness sl651 -runs=20000

Only the codec's own decode error may escape; anything else crashes the fuzzer, which
exits non-zero with the input that did it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from zoneinfo import ZoneInfo

import atheris

with atheris.instrument_imports():
    from drivers.cigem import codec as cigem
    from drivers.gb26875 import codec as gb26875
    from drivers.handheld import codec as handheld
    from drivers.hj212 import codec as hj212
    from drivers.link.framing import Stream
    from drivers.modbus import codec as modbus_rtu
    from drivers.sl651 import codec as sl651

TZ = ZoneInfo("Asia/Shanghai")


def _stream(take: Callable[[bytes], object], data: bytes) -> None:
    s: Stream[object] = Stream(take)  # type: ignore[arg-type]
    for i in range(0, len(data), 7):
        s.feed(data[i : i + 7])
    s.flush("end")


def sl651_one(data: bytes) -> None:
    _stream(sl651.take, data)
    with contextlib.suppress(sl651.Sl651Error):
        sl651.decode_frame(data, TZ)


def gb26875_one(data: bytes) -> None:
    _stream(gb26875.take, data)
    with contextlib.suppress(gb26875.Gb26875Error):
        gb26875.decode_frame(data, TZ)


def modbus_one(data: bytes) -> None:
    _stream(modbus_rtu.take, data)
    with contextlib.suppress(modbus_rtu.ModbusFrameError):
        modbus_rtu.decode_frame(data)


def cigem_one(data: bytes) -> None:
    with contextlib.suppress(cigem.CigemError):
        cigem.decode(data)


def handheld_one(data: bytes) -> None:
    _stream(handheld.take, data)


def hj212_one(data: bytes) -> None:
    _stream(hj212.take, data)
    with contextlib.suppress(hj212.Hj212Error):
        f, _ = hj212.decode_frame(data)
        hj212.readings(f, TZ)


TARGETS = {
    "hj212": hj212_one,
    "sl651": sl651_one,
    "gb26875": gb26875_one,
    "modbus-rtu": modbus_one,
    "cigem": cigem_one,
    "handheld": handheld_one,
}

if __name__ == "__main__":
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
