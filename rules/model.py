"""Rule definitions as plain frozen types (validated in rules.schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.model import Level

Direction = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """A metric above (or below) a value per level; the highest level reached wins."""

    id: str
    name: str
    metric: str
    direction: Direction
    # (level, threshold) ordered from the lowest level to the highest
    thresholds: tuple[tuple[Level, float], ...]
    devices: frozenset[str] | None = None  # None: every device reporting the metric

    def applies_to(self, device: str) -> bool:
        return self.devices is None or device in self.devices

    def level_for(self, value: float) -> Level | None:
        reached: Level | None = None
        for level, limit in self.thresholds:
            hit = value >= limit if self.direction == "above" else value <= limit
            if not hit:
                break
            reached = level
        return reached


Rule = ThresholdRule
