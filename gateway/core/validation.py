"""Turn pydantic validation errors into messages that name the key path."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def key_path(loc: tuple[int | str, ...]) -> str:
    """('devices', 2, 'metrics', 'rain_mm', 'unit') -> 'devices[2].metrics.rain_mm.unit'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def message(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (not allowed here)"
    return err["msg"]


def clean_loc(err: ErrorDetails, tags: frozenset[str] = frozenset()) -> tuple[int | str, ...]:
    """The key path without pydantic's validator names and discriminator values."""
    return tuple(
        p
        for p in err["loc"]
        if not (isinstance(p, str) and (p.startswith("function-") or p in tags))
    )


def problems(err: ValidationError, tags: frozenset[str] = frozenset()) -> list[str]:
    """One line per error; `tags` are discriminator values pydantic puts in the path."""
    return [f"{key_path(clean_loc(e, tags))}: {message(e)}" for e in err.errors(include_url=False)]
