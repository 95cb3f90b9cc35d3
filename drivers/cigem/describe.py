"""`stationgw decode cigem`: one frame as JSON for a technician."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from drivers.cigem import codec as cigem
from drivers.link.describe import iso


def describe(data: bytes, tz: tzinfo, now_ms: int) -> dict[str, Any]:
    m = cigem.decode(data)
    return {
        "protocol": "cigem",
        "type": m.type,
        "type_name": cigem.TYPES[m.type],
        "dev_id": m.dev_id,
        "notes": [] if m.type == 2 else ["plain JSON carries no time: ts is null"],
        "readings": [
            {"element": v.name, "value": v.value, "unit": v.unit, "ts": iso(v.ts)} for v in m.values
        ],
    }
