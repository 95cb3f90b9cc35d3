"""`stationgw decode cigem`: one frame as JSON for a technician."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from drivers.cigem import codec as cigem
from drivers.link.describe import iso


def describe(data: bytes, tz: tzinfo, now_ms: int) -> dict[str, Any]:
    m = cigem.decode(data)
    notes = [] if m.type in (2, 3) else ["plain JSON carries no time: ts is null"]
    out: dict[str, Any] = {
        "protocol": "cigem",
        "type": m.type,
        "type_name": cigem.TYPES[m.type],
        "dev_id": m.dev_id,
        "variant": m.variant,
        "notes": notes,
        "readings": [
            {"element": v.name, "value": v.value, "unit": v.unit, "ts": iso(v.ts)} for v in m.values
        ],
    }
    if m.file is not None:
        out["file"] = {
            "name": m.file.name,
            "at": iso(m.file.at),
            "bytes": len(m.file.data),
            "jpeg": m.file.data.startswith(b"\xff\xd8"),
        }
    return out
