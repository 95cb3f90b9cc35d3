"""What a DTU adds to the instrument's bytes (pure): the registration packet that opens
the connection and the heartbeat packets between frames.

`identify(buf, dtus)` decides which configured DTU a new connection is, from the bytes
it sent first; `WithHeartbeat(take, heartbeat)` wraps a frame codec so that a heartbeat
packet where a frame may start is consumed as a `Heartbeat` instead of being taken for
garbage. A heartbeat's bytes inside a frame are left alone: they are the instrument's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from drivers.dtu.config import DtuSection, packet
from drivers.link.framing import Reject

F = TypeVar("F")
MAX_REGISTRATION = 256


@dataclass(frozen=True, slots=True)
class Heartbeat:
    size: int


@dataclass(frozen=True, slots=True)
class Identified:
    dtu: DtuSection
    consumed: int  # bytes of the registration packet; what follows is the instrument's


@dataclass(frozen=True, slots=True)
class Unknown:
    registration: bytes  # what the connection sent (up to 256 bytes), for the log

    def shown(self) -> str:
        text = self.registration.decode("utf-8", "replace")
        if text.isprintable():
            return repr(text)
        return "hex:" + self.registration.hex().upper()


def _match(d: DtuSection, buf: bytes, first_packet: bool) -> int | None:
    """Bytes of `buf` this DTU's registration takes; None: not this DTU; -1: wait."""
    if d.registration_match == "pattern":
        m = d.pattern().match(buf)  # type: ignore[union-attr]
        if m is not None and m.end() > 0:
            return m.end()
        return None if first_packet else -1
    want = packet(d.registration)
    if d.registration_match == "exact":
        if buf.startswith(want):
            return len(want)
        return -1 if want.startswith(buf) else None
    # prefix: the registration packet starts with `want` and runs on with the DTU's id
    # (printable text: IMEI, serial) until the DTU pauses or the instrument's bytes begin
    if buf.startswith(want):
        end = _id_end(buf, len(want))
        if end is not None:
            return end
        return len(buf) if first_packet else -1
    return -1 if want.startswith(buf) else None


def _id_end(buf: bytes, start: int) -> int | None:
    """Where the printable id after a prefix ends: a byte that is not printable ASCII, or
    `~~` (7E 7E, an SL 651 start); None: the id may go on."""
    for i in range(start, len(buf)):
        if not 0x20 <= buf[i] < 0x7E or buf[i : i + 2] == b"~~":
            return i
    return None


def identify(
    buf: bytes, dtus: Sequence[DtuSection], *, first_packet: bool
) -> Identified | Unknown | None:
    """Which DTU sent `buf` first: Identified, Unknown, or None to wait for more bytes.

    `first_packet` says the bytes so far are all the connection sent before a pause
    (or the timeout): a prefix registration ends there, a pattern must match by then."""
    waiting = False
    for d in dtus:
        n = _match(d, buf, first_packet)
        if n is None:
            continue
        if n >= 0:
            return Identified(d, n)
        waiting = True
    if waiting and len(buf) < MAX_REGISTRATION:
        return None  # a registration still arriving
    return Unknown(buf[:MAX_REGISTRATION])


class WithHeartbeat(Generic[F]):
    """A codec that drops heartbeat packets between frames, then defers to `take`."""

    def __init__(
        self, take: Callable[[bytes], tuple[int, F | Reject | None]], heartbeat: bytes | None
    ) -> None:
        self.take = take
        self.heartbeat = heartbeat
        self.heartbeats = 0

    def __call__(self, buf: bytes) -> tuple[int, F | Heartbeat | Reject | None]:
        hb = self.heartbeat
        if hb:
            if buf.startswith(hb):
                self.heartbeats += 1
                return len(hb), Heartbeat(len(hb))
            if hb.startswith(buf):
                n, item = self.take(buf)
                return (n, item) if item is not None and not isinstance(item, Reject) else (0, None)
        return self.take(buf)
