"""Turn pydantic validation errors into messages that name the key path."""

from __future__ import annotations

from pydantic import ValidationError


def key_path(loc: tuple[int | str, ...]) -> str:
    """('devices', 2, 'metrics', 'rain_mm', 'unit') -> 'devices[2].metrics.rain_mm.unit'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def problems(err: ValidationError, tags: frozenset[str] = frozenset()) -> list[str]:
    """One line per error; `tags` are discriminator values pydantic puts in the path."""
    msgs = []
    for e in err.errors(include_url=False):
        loc = tuple(
            p
            for p in e["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p in tags))
        )
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        msgs.append(f"{key_path(loc)}: {msg}")
    return msgs
