"""The rules file a technician writes (TOML), validated with pydantic."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.config import read_toml
from gateway.errors import ConfigError
from gateway.model import Level
from gateway.validation import problems
from rules.model import Rule, ThresholdRule

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelValues(_Model):
    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None

    def pairs(self) -> list[tuple[Level, float]]:
        return [(level, v) for level in Level if (v := getattr(self, level.label)) is not None]


class ThresholdSpec(_Model):
    id: Ident
    name: str = Field(min_length=1)
    kind: Literal["threshold"]
    metric: Ident
    above: LevelValues | None = None
    below: LevelValues | None = None
    devices: list[Ident] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_direction(self) -> ThresholdSpec:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        values = self.above or self.below
        assert values is not None
        pairs = values.pairs()
        if not pairs:
            raise ValueError("give a value for at least one level (blue/yellow/orange/red)")
        limits = [v for _, v in pairs]
        rising = self.above is not None
        ordered = all((a < b) if rising else (a > b) for a, b in itertools.pairwise(limits))
        if not ordered:
            word = "increase" if rising else "decrease"
            raise ValueError(f"level values must strictly {word} from blue to red")
        return self

    def to_rule(self) -> ThresholdRule:
        values = self.above or self.below
        assert values is not None
        return ThresholdRule(
            id=self.id,
            name=self.name,
            metric=self.metric,
            direction="above" if self.above is not None else "below",
            thresholds=tuple(values.pairs()),
            devices=frozenset(self.devices) if self.devices else None,
        )


RuleSpec = Annotated[ThresholdSpec, Field(discriminator="kind")]
KINDS = frozenset({"threshold"})


class RulesFile(_Model):
    rules: list[RuleSpec] = []


def parse_rules(
    data: dict[str, object],
    path: Path,
    *,
    metrics: set[str] | None = None,
    devices: set[str] | None = None,
) -> tuple[Rule, ...]:
    """Validate a rules file; with `metrics`/`devices`, also check they are configured."""
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError(str(path), problems(e, KINDS)) from None
    found: list[str] = []
    seen: set[str] = set()
    for i, r in enumerate(spec.rules):
        if r.id in seen:
            found.append(f"rules[{i}].id: duplicate rule id {r.id!r}")
        seen.add(r.id)
        if metrics is not None and r.metric not in metrics:
            found.append(f"rules[{i}].metric: no configured device reports {r.metric!r}")
        for j, d in enumerate(r.devices or []):
            if devices is not None and d not in devices:
                found.append(f"rules[{i}].devices[{j}]: unknown device {d!r}")
    if found:
        raise ConfigError(str(path), found)
    return tuple(r.to_rule() for r in spec.rules)


def load_rules(
    path: Path, *, metrics: set[str] | None = None, devices: set[str] | None = None
) -> tuple[Rule, ...]:
    return parse_rules(read_toml(path), path, metrics=metrics, devices=devices)
