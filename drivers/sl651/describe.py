"""`stationgw decode sl651`: one frame as JSON for a technician."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from drivers.link.describe import iso, trailing
from drivers.sl651 import codec as sl651


def describe(data: bytes, tz: tzinfo, now_ms: int) -> dict[str, Any]:
    f, rest = sl651.decode_frame(data, tz)
    h = f.header
    return {
        "protocol": "sl651",
        "encoding": "ASCII" if h.ascii else "HEX/BCD",
        "centre": h.centre,
        "station": h.station,
        "password": h.password,
        "function": f"{h.function:02X}",
        "function_name": h.function_name,
        "direction": "down" if h.downlink else "up",
        "length": h.length,
        "start": "SYN" if h.packet else "STX",
        "packet": {"total": h.packet[0], "sequence": h.packet[1]} if h.packet else None,
        "end": sl651.END_NAMES[h.end],
        "crc": f"{h.crc:04X}",
        "function_fields": dict(f.fields),
        "variants": list(f.variants),
        "picture_bytes": len(f.picture) if f.picture is not None else None,
        "serial": f.serial,
        "sent_at": iso(f.sent_at),
        "station_type": f"{f.station_type:02X}" if f.station_type is not None else None,
        "text": f.text,
        "notes": list(f.notes),
        "trailing": trailing(rest, len(f.raw)),
        "readings": [
            {
                "element": e.name,
                "code": e.code,
                "value": e.value,
                "unit": e.unit,
                "ts": iso(e.ts),  # each value of a 5-minute array at its own time
                **({"array_index": e.index} if e.index is not None else {}),
            }
            for e in f.elements
        ],
    }
