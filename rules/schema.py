"""The rule files technicians write (TOML), validated with pydantic and compiled.

Pure: takes parsed TOML and a device context, returns rules or a ConfigError whose
problems name the file, the rule (index and id) and the key.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.core.errors import ConfigError
from gateway.core.model import Level
from gateway.core.validation import clean_loc, key_path, message
from rules.durations import parse_duration
from rules.model import (
    AccumulationRule,
    CompoundRule,
    Condition,
    DeviceInfo,
    Direction,
    Limits,
    NoDataRule,
    RateRule,
    Rule,
    Scope,
    ThresholdRule,
    Timing,
    Window,
)

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
LevelName = Literal["blue", "yellow", "orange", "red"]
PER = {"min": 60_000, "h": 3_600_000, "d": 86_400_000}


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def _duration(v: str) -> str:
    parse_duration(v)
    return v


def _positive(v: str) -> str:
    if parse_duration(v) <= 0:
        raise ValueError("must be longer than 0")
    return v


Duration = Annotated[str, Field(min_length=2), AfterValidator(_duration)]
Span = Annotated[str, Field(min_length=2), AfterValidator(_positive)]  # a duration above 0


class LevelValues(_Model):
    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None

    def limits(self, rising: bool = True) -> Limits:
        pairs = [(lvl, v) for lvl in Level if (v := getattr(self, lvl.label)) is not None]
        if not pairs:
            raise ValueError("give a value for at least one level (blue/yellow/orange/red)")
        values = [v for _, v in pairs]
        ok = all((a < b) if rising else (a > b) for a, b in itertools.pairwise(values))
        if not ok:
            word = "increase" if rising else "decrease"
            raise ValueError(f"level values must strictly {word} from blue to red")
        return tuple(pairs)


class _ScopeSpec(_Model):
    devices: list[Ident] | None = Field(default=None, min_length=1)
    tags: list[str] | None = Field(default=None, min_length=1)
    points: list[Ident] | None = Field(default=None, min_length=1)
    villages: list[Ident] | None = Field(default=None, min_length=1)


class _Timing(_Model):
    for_: Duration = Field(default="0s", alias="for")
    keep_for: Duration = "0s"

    def timing(self) -> Timing:
        return Timing(parse_duration(self.for_), parse_duration(self.keep_for))


class _Timed(_ScopeSpec, _Timing):
    """A rule judging device series: a scope and the shared timing."""


class _Directed(_Timed):
    """Levels given as `above` or `below` (exactly one)."""

    above: LevelValues | None = None
    below: LevelValues | None = None

    def levels(self) -> tuple[Direction, Limits]:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        if self.above is not None:
            return "above", self.above.limits(True)
        assert self.below is not None
        return "below", self.below.limits(False)


class ThresholdSpec(_Directed):
    id: Ident
    name: str = Field(min_length=1)
    kind: Literal["threshold"]
    metric: Ident
    clear: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ThresholdSpec:
        self.levels()
        return self


class WindowSpec(LevelValues):
    window: Span


class AccumulationSpec(_Timed):
    id: Ident
    name: str = Field(min_length=1)
    kind: Literal["accumulation"]
    metric: Ident
    source: Literal["increment", "counter"] = "increment"
    windows: list[WindowSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> AccumulationSpec:
        for w in self.windows:
            w.limits()
        return self


class RateSpec(_Directed):
    id: Ident
    name: str = Field(min_length=1)
    kind: Literal["rate"]
    metric: Ident
    window: Span
    per: Literal["min", "h", "d"]
    accel_above: LevelValues | None = None
    min_points: int = Field(default=3, ge=2)

    @model_validator(mode="after")
    def _check(self) -> RateSpec:
        self.levels()
        if self.accel_above is not None:
            self.accel_above.limits()
        return self


class NoDataSpec(_ScopeSpec):
    id: Ident
    name: str = Field(min_length=1)
    kind: Literal["no_data"]
    metric: Ident | None = None
    after: Span


class ConditionSpec(_Model):
    rule: Ident
    level: LevelName


class CompoundSpec(_Timing):
    id: Ident
    name: str = Field(min_length=1)
    kind: Literal["compound"]
    all: list[ConditionSpec] | None = Field(default=None, min_length=1)
    any: list[ConditionSpec] | None = Field(default=None, min_length=1)
    level: LevelName
    points: list[Ident] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CompoundSpec:
        if (self.all is None) == (self.any is None):
            raise ValueError("give exactly one of 'all' or 'any'")
        return self


RuleSpec = Annotated[
    ThresholdSpec | AccumulationSpec | RateSpec | NoDataSpec | CompoundSpec,
    Field(discriminator="kind"),
]
KINDS = frozenset({"threshold", "accumulation", "rate", "no_data", "compound"})


class RulesFile(_Model):
    rules: list[RuleSpec] = []


def _scope(
    spec: _ScopeSpec, devices: Mapping[str, DeviceInfo] | None, where: str, found: list[str]
) -> Scope:
    wanted: set[str] | None = None
    if spec.devices is not None:
        if devices is not None:
            for j, d in enumerate(spec.devices):
                if d not in devices:
                    found.append(f"{where}.devices[{j}]: unknown device {d!r}")
        wanted = set(spec.devices)
    for key, attr in (("tags", "tags"), ("points", "point"), ("villages", "village")):
        names: list[str] | None = getattr(spec, key)
        if names is None:
            continue
        if devices is None:
            found.append(f"{where}.{key}: needs the station file (-c) to know the devices")
            continue
        match = {
            d.id
            for d in devices.values()
            if (set(names) & d.tags if attr == "tags" else getattr(d, attr) in names)
        }
        if not match:
            found.append(f"{where}.{key}: no configured device matches {names}")
        wanted = match if wanted is None else wanted & match
    return Scope(frozenset(wanted) if wanted is not None else None)


def _compile(
    spec: Any, devices: Mapping[str, DeviceInfo] | None, where: str, found: list[str]
) -> Rule:
    if isinstance(spec, ThresholdSpec):
        return ThresholdRule(
            spec.id,
            spec.name,
            spec.metric,
            *spec.levels(),
            spec.clear,
            spec.timing(),
            _scope(spec, devices, where, found),
        )
    if isinstance(spec, AccumulationSpec):
        return AccumulationRule(
            spec.id,
            spec.name,
            spec.metric,
            tuple(Window(parse_duration(w.window), w.limits()) for w in spec.windows),
            spec.source,
            spec.timing(),
            _scope(spec, devices, where, found),
        )
    if isinstance(spec, RateSpec):
        return RateRule(
            spec.id,
            spec.name,
            spec.metric,
            parse_duration(spec.window),
            PER[spec.per],
            spec.per,
            *spec.levels(),
            spec.accel_above.limits() if spec.accel_above else (),
            spec.min_points,
            spec.timing(),
            _scope(spec, devices, where, found),
        )
    if isinstance(spec, NoDataSpec):
        return NoDataRule(
            spec.id,
            spec.name,
            spec.metric,
            parse_duration(spec.after),
            _scope(spec, devices, where, found),
        )
    assert isinstance(spec, CompoundSpec)
    conds = spec.all or spec.any
    assert conds is not None
    points = frozenset(spec.points) if spec.points else None
    if points is not None and devices is not None:
        known = {d.point for d in devices.values()}
        for j, p in enumerate(spec.points or []):
            if p not in known:
                found.append(f"{where}.points[{j}]: no device at monitoring point {p!r}")
    return CompoundRule(
        spec.id,
        spec.name,
        "all" if spec.all else "any",
        tuple(Condition(c.rule, Level.parse(c.level)) for c in conds),
        Level.parse(spec.level),
        points,
        spec.timing(),
    )


def _where(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    """'rules[2] (flash-flood)' for a location inside the rules list."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        raw = data.get("rules")
        rid = None
        if isinstance(raw, list) and loc[1] < len(raw) and isinstance(raw[loc[1]], dict):
            rid = raw[loc[1]].get("id")
        return f"rules[{loc[1]}]" + (f" ({rid})" if isinstance(rid, str) else "")
    return key_path(loc)


def parse_rules(
    data: Mapping[str, Any],
    name: str,
    *,
    devices: Mapping[str, DeviceInfo] | None = None,
    metrics: set[str] | None = None,
) -> tuple[Rule, ...]:
    """Validate one rules file; `name` is how errors name it."""
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors(include_url=False):
            loc = clean_loc(err, KINDS)
            where = _where(data, loc)
            if where.startswith("rules[") and len(loc) > 2:
                where += "." + key_path(loc[2:])
            lines.append(f"{where}: {message(err)}")
        raise ConfigError(name, lines) from None
    found: list[str] = []
    out: list[Rule] = []
    for i, r in enumerate(spec.rules):
        where = f"rules[{i}] ({r.id})"
        metric = getattr(r, "metric", None)
        if metrics is not None and metric is not None and metric not in metrics:
            found.append(f"{where}.metric: no configured device reports {metric!r}")
        out.append(_compile(r, devices, where, found))
    if found:
        raise ConfigError(name, found)
    return tuple(out)


def check_set(files: Mapping[str, tuple[Rule, ...]]) -> list[str]:
    """Problems across files: duplicate ids, compound rules naming unknown rules."""
    found: list[str] = []
    seen: dict[str, str] = {}
    for name, rules in files.items():
        for r in rules:
            if r.id in seen:
                found.append(f"{name}: rule id {r.id!r} is already used in {seen[r.id]}")
            seen.setdefault(r.id, name)
    kinds = {r.id: r.kind for rules in files.values() for r in rules}
    for name, rules in files.items():
        for r in rules:
            if isinstance(r, CompoundRule):
                for c in r.conditions:
                    if c.rule not in kinds:
                        found.append(f"{name}: {r.id}: condition names unknown rule {c.rule!r}")
                    elif kinds[c.rule] in ("compound", "no_data"):
                        found.append(
                            f"{name}: {r.id}: condition rule {c.rule!r} is {kinds[c.rule]}; "
                            "only threshold, accumulation and rate rules can be combined"
                        )
    return found
