"""`stationgw decode PROTOCOL (HEX | -)`: one frame to JSON, for technicians.

Prints the header fields and a `readings` list (`element`, `value`, `unit`, `ts` in ISO
8601 UTC) and exits 0; a frame that cannot be decoded prints what is wrong and the byte
offset, and exits 2. Bytes after a whole frame are reported under `trailing`, never
guessed at. Each protocol's `describe` lives in its driver folder (drivers/registry.py).
"""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import Any

from drivers.registry import DECODERS
from gateway.core.errors import FrameError, PayloadError

PROTOCOLS = tuple(DECODERS)


class DecodeError(PayloadError):
    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"{reason} (byte offset {offset})")


def parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    for i, ch in enumerate(cleaned):
        if ch not in "0123456789abcdefABCDEF":
            raise DecodeError(f"{ch!r} is not a hex digit", i // 2)
    if len(cleaned) % 2:
        raise DecodeError("odd number of hex digits", len(cleaned) // 2)
    return bytes.fromhex(cleaned)


def parse_text(text: str) -> bytes:
    """A text frame as pasted: surrounding blanks dropped, a literal `\\r\\n` accepted."""
    cleaned = text.strip().replace("\\r\\n", "\r\n")
    try:
        return cleaned.encode("ascii")
    except UnicodeEncodeError as e:
        raise DecodeError(f"{cleaned[e.start]!r} is not ASCII", e.start) from None


def decode(protocol: str, data: bytes, tz: tzinfo, now_ms: int | None = None) -> dict[str, Any]:
    """Decode one frame of `protocol`; raise DecodeError (reason, byte offset)."""
    describe = DECODERS.get(protocol)
    if describe is None:
        raise DecodeError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}", 0)
    try:
        return describe(data, tz, now_ms if now_ms is not None else int(time.time() * 1000))
    except FrameError as e:
        raise DecodeError(e.reason, e.offset) from None
