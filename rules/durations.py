"""Durations as technicians write them: "90s", "10m", "1h30m", "2d"."""

from __future__ import annotations

import re

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_MS = 3660 * 86_400_000  # ten years
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> int:
    """Milliseconds of a duration; ValueError naming what is wrong."""
    s = text.strip()
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"{text!r} is not a duration (write e.g. 90s, 10m, 1h30m, 2d)")
    if total > MAX_MS:  # also keeps deadlines (now + duration) inside SQLite's integers
        raise ValueError(f"{text!r} is longer than {MAX_MS // _UNITS['d']}d")
    return int(total)


def format_duration(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
