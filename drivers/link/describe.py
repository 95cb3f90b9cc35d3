"""Helpers of the drivers' `describe` functions (`stationgw decode`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def trailing(rest: bytes, offset: int) -> dict[str, Any] | None:
    if not rest:
        return None
    return {
        "offset": offset,
        "hex": rest.hex().upper(),
        "note": "bytes after the frame's length and check: not part of this frame, "
        "not decoded (on a stream they belong to what follows)",
    }
