"""Rules as plain frozen types (validated and compiled in rules.schema).

Every hazard rule yields one of the four levels (or none) per series; timing (`for`,
`keep_for`) is shared by all kinds and applied by rules.levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.core.model import Level

Direction = Literal["above", "below"]
Limits = tuple[tuple[Level, float], ...]  # (level, value) from the lowest level to the highest


def level_for(limits: Limits, direction: Direction, value: float) -> Level | None:
    """The highest level whose limit the value reaches."""
    reached: Level | None = None
    for level, limit in limits:
        if not (value >= limit if direction == "above" else value <= limit):
            break
        reached = level
    return reached


def level_with_clear(
    limits: Limits, direction: Direction, value: float, current: Level | None, clear: float
) -> Level | None:
    """Like level_for, but a level already held is kept until the value leaves it by more
    than `clear` (hysteresis), so a value hovering at the line does not flap."""
    raw = level_for(limits, direction, value)
    if current is None or clear <= 0 or (raw is not None and raw >= current):
        return raw
    shifted = value + clear if direction == "above" else value - clear
    held = level_for(limits, direction, shifted)
    if held is None:
        return raw
    return max(raw or held, min(held, current))


@dataclass(frozen=True, slots=True)
class Timing:
    for_ms: int = 0  # the condition must hold this long before the level is reached
    keep_for_ms: int = 0  # the level stays this long after the condition ends


@dataclass(frozen=True, slots=True)
class Scope:
    """Which devices a rule judges; None everywhere means every device with the metric."""

    devices: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    id: str
    name: str
    metric: str
    direction: Direction
    limits: Limits
    clear: float = 0.0
    timing: Timing = Timing()
    scope: Scope = Scope()
    kind: Literal["threshold"] = "threshold"


@dataclass(frozen=True, slots=True)
class Window:
    ms: int
    limits: Limits  # sum over the window reaching a limit gives its level


@dataclass(frozen=True, slots=True)
class AccumulationRule:
    id: str
    name: str
    metric: str
    windows: tuple[Window, ...]
    source: Literal["increment", "counter"] = "increment"
    timing: Timing = Timing()
    scope: Scope = Scope()
    kind: Literal["accumulation"] = "accumulation"

    span_ms: int = 0  # the longest window; computed

    def __post_init__(self) -> None:
        object.__setattr__(self, "span_ms", max(w.ms for w in self.windows))


@dataclass(frozen=True, slots=True)
class RateRule:
    """Change per `per_ms` (least-squares slope over `window_ms`), optionally its change."""

    id: str
    name: str
    metric: str
    window_ms: int
    per_ms: int
    per_label: str  # "min", "h", "d" as written
    direction: Direction
    limits: Limits
    accel_limits: Limits = ()  # slope change per `per_ms` over one window
    min_points: int = 3
    timing: Timing = Timing()
    scope: Scope = Scope()
    kind: Literal["rate"] = "rate"


@dataclass(frozen=True, slots=True)
class NoDataRule:
    """A device (metric None) or one of its metrics silent for longer than `after_ms`."""

    id: str
    name: str
    metric: str | None
    after_ms: int
    scope: Scope = Scope()
    kind: Literal["no_data"] = "no_data"


@dataclass(frozen=True, slots=True)
class Condition:
    rule: str
    level: Level


@dataclass(frozen=True, slots=True)
class CompoundRule:
    """all/any of other rules' levels at the same monitoring point give `level`."""

    id: str
    name: str
    mode: Literal["all", "any"]
    conditions: tuple[Condition, ...]
    level: Level
    points: frozenset[str] | None = None
    timing: Timing = Timing()
    kind: Literal["compound"] = "compound"


HazardRule = ThresholdRule | AccumulationRule | RateRule
Rule = ThresholdRule | AccumulationRule | RateRule | NoDataRule | CompoundRule


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What rules need to know of a configured device (scopes, compound points, units)."""

    id: str
    point: str | None = None
    village: str | None = None
    tags: frozenset[str] = frozenset()
    units: tuple[tuple[str, str], ...] = ()  # metric -> unit

    def unit(self, metric: str) -> str:
        return dict(self.units).get(metric, "")
