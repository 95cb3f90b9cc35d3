"""Multi-packet (M3, SYN) messages: packets joined, each message confirmed, gaps re-requested.

SL 651-2014 6.3 (figure 2a) and the notes of tables 19 and 23: the centre answers the last
packet of a message; all packets good -> EOT carrying the packet total as the sequence;
a packet missing or bad -> NAK carrying that packet's sequence (one NAK per packet, each
resent on its own), asked at most `retries` times. A message that still lacks packets when
a new message starts, or when its connection ends, is handed back whole but flagged
incomplete (`incomplete()`), never dropped.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import tzinfo
from zoneinfo import ZoneInfo

from drivers.sl651 import codec
from drivers.sl651.codec import EOT, ETX, NAK, Frame, Sl651Error

BEIJING = ZoneInfo("Asia/Shanghai")

Key = tuple[str, int]


class Reassembler:
    """Joins SYN packets 1…N of one station and function into one frame (pure, in memory)."""

    def __init__(self, tz: tzinfo = BEIJING, retries: int = 2) -> None:
        self.tz = tz
        self.retries = retries
        self._parts: dict[Key, dict[int, Frame]] = {}
        self._asked: dict[Key, dict[int, int]] = {}
        self._left: list[Frame] = []

    def add(self, frame: Frame) -> Frame | None:
        """A single-packet frame comes straight back; a packet returns the whole when complete."""
        h = frame.header
        if h.packet is None:
            return frame
        total, seq = h.packet
        key = (h.station, h.function)
        parts = self._parts.setdefault(key, {})
        old_total = next(iter(parts.values())).header.packet if parts else None
        if parts and ((seq == 1 and 1 in parts) or (old_total and old_total[0] != total)):
            self._left.append(self._incomplete(key))  # a new message starts: the old one is left
            parts = self._parts.setdefault(key, {})
        parts[seq] = frame
        if any(s not in parts for s in range(1, total + 1)):
            return None
        del self._parts[key]
        self._asked.pop(key, None)
        return self._join(parts, total)

    def _join(self, parts: dict[int, Frame], total: int) -> Frame:
        body = b"".join(parts[s].body for s in range(1, total + 1))
        first = parts[1]
        base = (24 + 6) if first.header.ascii else (codec.HEADER_LEN + 3)
        if first.header.ascii:
            from drivers.sl651 import ascii as ascii_mode

            joined = ascii_mode.body_frame(first.header, first.raw, body, base, self.tz)
        else:
            joined = codec.body_frame(first.header, first.raw, body, base, self.tz)
        return replace(
            joined,
            raw=b"".join(parts[s].raw for s in range(1, total + 1)),
            body=body,
            notes=(*joined.notes, f"reassembled from {total} packets"),
        )

    def replies(self, frame: Frame, whole: Frame | None, now_ms: int) -> list[bytes]:
        """The M3 answers after `frame` (a packet) was added: EOT when whole, NAKs for gaps.

        Nothing is answered before the last packet (sequence = total, or ETX) is seen."""
        h = frame.header
        if h.packet is None:
            return []
        total, seq = h.packet
        if whole is not None:
            return [codec.confirmation(whole, now_ms, self.tz, EOT, (total, total))]
        if seq != total and h.end != ETX:
            return []
        key = (h.station, h.function)
        parts = self._parts.get(key, {})
        asked = self._asked.setdefault(key, {})
        serial = None
        if 1 in parts and len(parts[1].body) >= 2:
            serial = int.from_bytes(parts[1].body[:2], "big")
            if h.ascii:
                serial = int(parts[1].body[:4], 16)
        out = []
        for s in range(1, total + 1):
            if s in parts or asked.get(s, 0) >= self.retries:
                continue
            asked[s] = asked.get(s, 0) + 1
            out.append(
                codec.confirmation(replace(frame, serial=serial), now_ms, self.tz, NAK, (total, s))
            )
        if not out:  # every missing packet asked for as often as allowed: give the message up
            self._left.append(self._incomplete(key))
        return out

    def _incomplete(self, key: Key) -> Frame:
        parts = self._parts.pop(key, {})
        self._asked.pop(key, None)
        first = parts[min(parts)]
        total = first.header.packet[0] if first.header.packet else 0
        missing = [s for s in range(1, total + 1) if s not in parts]
        return replace(
            first,
            raw=b"".join(parts[s].raw for s in sorted(parts)),
            body=b"".join(parts[s].body for s in sorted(parts)),
            notes=(
                f"incomplete message: packets {', '.join(map(str, missing))} of {total} "
                "never arrived",
            ),
        )

    def incomplete(self, flush: bool = False) -> list[Frame]:
        """Messages given up (and, with flush, every message still waiting), flagged."""
        if flush:
            for key in list(self._parts):
                self._left.append(self._incomplete(key))
        out, self._left = self._left, []
        return out

    def pending(self) -> int:
        return sum(len(p) for p in self._parts.values())


__all__ = ["Reassembler", "Sl651Error"]
