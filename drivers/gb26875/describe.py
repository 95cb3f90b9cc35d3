"""`stationgw decode gb26875`: one frame as JSON for a technician."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from drivers.gb26875 import codec as gb26875
from drivers.link.describe import iso, trailing


def describe(data: bytes, tz: tzinfo, now_ms: int) -> dict[str, Any]:
    f, rest = gb26875.decode_frame(data, tz)
    readings = []
    for s in f.statuses:
        readings.append(
            {
                "element": f"{s.name} state",
                "value": s.state,
                "unit": None,
                "ts": iso(s.ts),
                "flags": s.flags,
                "description": s.description,
            }
        )
    return {
        "protocol": "gb26875",
        "serial": f.serial,
        "version": f"{f.version[0]}.{f.version[1]}",
        "sent_at": iso(f.sent_at),
        "source": f.source,
        "destination": f.destination,
        "command": f.command,
        "command_name": gb26875.COMMANDS[f.command],
        "info_type": f.info_type,
        "fire_alarm": any(s.fire_alarm for s in f.statuses),
        "notes": list(f.notes),
        "trailing": trailing(rest, len(f.raw)),
        "readings": readings,
    }
