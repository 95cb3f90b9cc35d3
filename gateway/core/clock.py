"""The gateway's clock: wall time at start, advanced by the monotonic clock.

Deadlines (calls, escalation, stage deadlines), rule timers, silence and receive times all
use `now_ms()`. A jump of the box's clock (an NTP step, a hand-set date, a dead RTC) moves
neither them nor anything already scheduled: it is logged and shown at /api/health
(`clock.system_offset_s`), and the new system time is adopted at the next restart. One
exception: a box that started with an unset clock (before `SANE_MS`: no real-time clock,
NTP not yet through) takes the first sane system time at once, since every timestamp it
would write is wrong anyway; its pending deadlines then fall due, which is the lesser harm.
Readings keep their device's timestamps; a device far from this clock is warned about
(see `skew`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("stationgw.clock")

JUMP_MS = 2_000  # the system clock moved this far from ours: say so
SKEW_MS = 5 * 60_000  # a device this far from the gateway's clock: clock-skew warning
SANE_MS = 1_735_689_600_000  # 2025-01-01 UTC: a clock before this was never set


class SteadyClock:
    def __init__(
        self,
        wall_ns: Callable[[], int] = time.time_ns,
        mono_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._wall_ns = wall_ns
        self._mono_ns = mono_ns
        self._base_ms = wall_ns() // 1_000_000 - mono_ns() // 1_000_000
        self._reported_ms = 0

    def now_ms(self) -> int:
        return self._base_ms + self._mono_ns() // 1_000_000

    def system_offset_ms(self) -> int:
        """How far the system clock has moved from the gateway's since the start."""
        return self._wall_ns() // 1_000_000 - self.now_ms()

    def check(self) -> int:
        """Log once per jump of the system clock; return the current offset (ms)."""
        offset = self.system_offset_ms()
        if self.now_ms() < SANE_MS <= self.now_ms() + offset:
            self._base_ms += offset
            self._reported_ms = 0
            log.warning(
                "the clock was unset at start; the system clock is now set (%+.0f s): adopted",
                offset / 1000,
            )
            return 0
        if abs(offset - self._reported_ms) > JUMP_MS:
            self._reported_ms = offset
            log.warning(
                "the system clock moved %+.1f s against the monotonic clock; deadlines and "
                "durations keep the gateway's clock (adopted from the system at the next start)",
                offset / 1000,
            )
        return offset


CLOCK = SteadyClock()  # the process's clock


def now_ms() -> int:
    return CLOCK.now_ms()


def skew(device_ts: int, now: int) -> int | None:
    """Pure: the device clock's lead (+) or lag (-) in ms when beyond SKEW_MS, else None."""
    d = device_ts - now
    return d if abs(d) > SKEW_MS else None
