"""`stationgw decode modbus-rtu`: one frame as JSON for a technician."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from drivers.link.describe import iso
from drivers.modbus import codec as modbus_rtu


def describe(data: bytes, tz: tzinfo, now_ms: int) -> dict[str, Any]:
    f = modbus_rtu.decode_frame(data)
    readings = []
    if f.kind == "response" and f.function in (3, 4):
        readings = [
            {"element": f"register+{i}", "value": v, "unit": None, "ts": iso(now_ms)}
            for i, v in enumerate(f.registers)
        ]
    return {
        "protocol": "modbus-rtu",
        "unit": f.unit,
        "function": f.function,
        "function_name": f.function_name,
        "kind": f.kind,
        "address": f.address,
        "count": f.count,
        "exception": (
            {"code": f.exception, "name": modbus_rtu.EXCEPTIONS.get(f.exception, "unknown")}
            if f.exception is not None
            else None
        ),
        "crc": f"{int.from_bytes(data[-2:], 'little'):04X}",
        "notes": (
            [
                "register numbers are relative to the request's start address; ts is the "
                "time of decoding (RTU frames carry no time)"
            ]
            if readings
            else []
        ),
        "readings": readings,
    }
