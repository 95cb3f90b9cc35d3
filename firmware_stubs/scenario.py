"""Scripted device behaviour: what each simulated device reports, as a function of time.

A scenario file (TOML) lists devices; each device has metrics, each metric a list of
keyframes ``[seconds since start, value]``. Between keyframes the value is interpolated
linearly; after the last one it holds (or the script loops with period ``repeat_s``).
Everything here is pure apart from :func:`load_scenario`, which reads and validates a file.
"""

from __future__ import annotations

import bisect
import itertools
import random
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails

from gateway.core.validation import key_path

__all__ = ["DeviceScript", "MetricScript", "Scenario", "ScenarioError", "load_scenario"]


class ScenarioError(Exception):
    """A scenario file cannot be read or does not match the schema."""


def _points_problem(points: Sequence[Sequence[float]]) -> str | None:
    """What is wrong with a keyframe list, or None if it is usable."""
    if not points:
        return "needs at least one keyframe"
    if points[0][0] < 0:
        return f"first keyframe time {points[0][0]:g} is negative"
    for (t0, _), (t1, _) in itertools.pairwise(points):
        if t1 <= t0:
            return f"keyframe times must increase, got {t1:g} after {t0:g}"
    return None


@dataclass(frozen=True, slots=True)
class MetricScript:
    """One metric's script: keyframes ``(t_s, value)`` with strictly increasing ``t_s``."""

    name: str
    points: tuple[tuple[float, float], ...]
    noise: float = 0.0
    repeat_s: float | None = None
    decimals: int = 3
    floor: float | None = None
    _times: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _points_problem(self.points)
        if problem:
            raise ValueError(f"metric {self.name!r}: {problem}")
        object.__setattr__(self, "_times", tuple(t for t, _ in self.points))

    def value_at(self, t_s: float, rng: random.Random) -> float:
        """The reported value ``t_s`` seconds after start (noise drawn from ``rng``)."""
        if self.repeat_s is not None:
            t_s %= self.repeat_s
        i = bisect.bisect_right(self._times, t_s)
        if i == 0:
            value = self.points[0][1]
        elif i == len(self.points):
            value = self.points[-1][1]
        else:
            (t0, v0), (t1, v1) = self.points[i - 1], self.points[i]
            value = v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)
        if self.noise:
            value += rng.uniform(-self.noise, self.noise)
        if self.floor is not None:
            value = max(value, self.floor)
        return round(value, self.decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceScript:
    """One simulated device: its id, its clock's offset from true time, its metrics."""

    id: str
    clock_offset_s: float = 0.0
    metrics: tuple[MetricScript, ...] = ()
    interval_s: float | None = None

    def values_at(self, t_s: float, rng: random.Random) -> dict[str, float]:
        return {m.name: m.value_at(t_s, rng) for m in self.metrics}


@dataclass(frozen=True, slots=True)
class Scenario:
    interval_s: float
    devices: tuple[DeviceScript, ...]

    def interval_for(self, device: DeviceScript) -> float:
        return device.interval_s if device.interval_s is not None else self.interval_s

    def device(self, device_id: str) -> DeviceScript:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)


# --- file schema (pydantic at the edge) -------------------------------------------------

_Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
_Point = Annotated[list[float], Field(min_length=2, max_length=2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _MetricFile(_Model):
    points: Annotated[list[_Point], Field(min_length=1)]
    noise: Annotated[float, Field(ge=0)] = 0.0
    floor: float | None = None
    repeat_s: Annotated[float, Field(gt=0)] | None = None
    decimals: Annotated[int, Field(ge=0, le=9)] = 3

    @field_validator("points")
    @classmethod
    def _times_increase(cls, points: list[list[float]]) -> list[list[float]]:
        problem = _points_problem(points)
        if problem:
            raise ValueError(problem)
        return points

    @field_validator("repeat_s")
    @classmethod
    def _repeat_covers_points(cls, repeat_s: float | None, info: ValidationInfo) -> float | None:
        points = info.data.get("points")
        if repeat_s is not None and points and repeat_s < points[-1][0]:
            raise ValueError(f"{repeat_s:g} is shorter than the last keyframe ({points[-1][0]:g})")
        return repeat_s


class _DeviceFile(_Model):
    id: _Name
    clock_offset_s: float = 0.0
    interval_s: Annotated[float, Field(gt=0)] | None = None
    metrics: Annotated[dict[_Name, _MetricFile], Field(min_length=1)]


class _ScenarioFile(_Model):
    interval_s: Annotated[float, Field(gt=0)]
    devices: Annotated[list[_DeviceFile], Field(min_length=1)]


def _error_text(error: ErrorDetails) -> str:
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return str(error["msg"])


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file; raise :class:`ScenarioError` naming the key."""
    path = Path(path)
    name = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{name}: not valid TOML: {exc}") from exc
    try:
        parsed = _ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{name}: {key_path(e['loc'])}: {_error_text(e)}" for e in exc.errors()]
        raise ScenarioError("\n".join(lines)) from None
    seen: set[str] = set()
    for i, device in enumerate(parsed.devices):
        if device.id in seen:
            raise ScenarioError(f"{name}: devices[{i}].id: duplicate device id {device.id!r}")
        seen.add(device.id)
    return Scenario(
        interval_s=parsed.interval_s,
        devices=tuple(
            DeviceScript(
                id=d.id,
                clock_offset_s=d.clock_offset_s,
                interval_s=d.interval_s,
                metrics=tuple(
                    MetricScript(
                        name=name,
                        points=tuple((t, v) for t, v in m.points),
                        noise=m.noise,
                        repeat_s=m.repeat_s,
                        decimals=m.decimals,
                        floor=m.floor,
                    )
                    for name, m in d.metrics.items()
                ),
            )
            for d in parsed.devices
        ),
    )
