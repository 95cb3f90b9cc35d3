"""Rule unit tests, in the spirit of `promtool test rules` (pure: data in, results out).

A test file names rule files, optionally describes devices (points, tags, fault
settings), and lists cases: input series written compactly (start, step, values) and the
transitions expected at given times. Values: numbers separated by spaces; `_` is a gap;
`5x3` is three fives; `0+2x4` is 0 2 4 6; `10-1x3` is 10 9 8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gateway.core.errors import ConfigError
from gateway.core.model import Reading
from gateway.core.validation import problems
from rules.durations import format_duration, parse_duration
from rules.evaluator import RuleSet, Transition
from rules.faults import FaultSpec
from rules.model import DeviceInfo, Rule
from rules.replay import replay

_TOKEN = re.compile(r"^(-?\d+(?:\.\d+)?)(?:([+-])(\d+(?:\.\d+)?))?x(\d+)$")


def expand(values: str) -> list[float | None]:
    out: list[float | None] = []
    for tok in values.split():
        if tok == "_":
            out.append(None)
            continue
        m = _TOKEN.match(tok)
        if m:
            start, sign, step, n = m.groups()
            inc = float(step or 0) * (-1 if sign == "-" else 1)
            out.extend(round(float(start) + inc * i, 9) for i in range(int(n)))
            continue
        try:
            out.append(float(tok))
        except ValueError:
            raise ValueError(f"{tok!r} is not a value (write 1.5, _, 5x3 or 0+2x4)") from None
    return out


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricFaults(_Model):
    unit: str = ""
    min: float = float("-inf")
    max: float = float("inf")
    stuck_after: str | None = None
    max_jump: float | None = None
    fault_below: float | None = None


class DeviceSpec(_Model):
    id: str
    point: str | None = None
    village: str | None = None
    tags: list[str] = []
    metrics: dict[str, MetricFaults] = {}


class SeriesSpec(_Model):
    device: str
    metric: str
    start: str = "0s"  # offset from the case's start
    step: str
    values: str


class ExpectSpec(_Model):
    at: str  # offset from the case's start
    rule: str
    device: str = ""
    point: str | None = None
    level: Literal["blue", "yellow", "orange", "red", "none"] = "none"
    kind: Literal["hazard", "fault"] = "hazard"
    active: bool | None = None  # faults: on (true) or cleared (false)


class CaseSpec(_Model):
    name: str
    start: AwareDatetime = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    until: str | None = None  # let time run this long after the start
    series: list[SeriesSpec] = Field(min_length=1)
    expect: list[ExpectSpec] = []


def _beside(name: str) -> str:
    p = PurePath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"{name!r}: name a rule file in this file's folder (not absolute, no ..)")
    return name


class RuleTestFile(_Model):
    rules: Annotated[list[Annotated[str, AfterValidator(_beside)]], Field(min_length=1)]
    lateness: str = "1h"
    tick: str = "1m"
    devices: list[DeviceSpec] = []
    tests: list[CaseSpec] = Field(min_length=1)


def parse_test_file(data: dict[str, object], name: str) -> RuleTestFile:
    try:
        spec = RuleTestFile.model_validate(data)
        for case in spec.tests:
            for s in case.series:
                expand(s.values)
                parse_duration(s.step)
                parse_duration(s.start)
            for e in case.expect:
                parse_duration(e.at)
    except ValidationError as e:
        raise ConfigError(name, problems(e)) from None
    except ValueError as e:
        raise ConfigError(name, [str(e)]) from None
    return spec


def context(spec: RuleTestFile) -> tuple[dict[str, DeviceInfo], dict[tuple[str, str], FaultSpec]]:
    devices = {
        d.id: DeviceInfo(
            d.id,
            d.point,
            d.village,
            frozenset(d.tags),
            tuple((m, f.unit) for m, f in d.metrics.items()),
        )
        for d in spec.devices
    }
    faults = {
        (d.id, m): FaultSpec(
            f.min,
            f.max,
            parse_duration(f.stuck_after) if f.stuck_after else None,
            f.max_jump,
            f.fault_below,
        )
        for d in spec.devices
        for m, f in d.metrics.items()
    }
    return devices, faults


Row = tuple[str, str, str, str, str]  # at, kind, rule, where, what


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    expected: list[Row]
    got: list[Row]

    @property
    def passed(self) -> bool:
        return self.expected == self.got


def _expected_row(e: ExpectSpec) -> Row:
    where = e.device or f"@{e.point}"
    what = e.level if e.kind == "hazard" else ("on" if e.active in (None, True) else "off")
    return (format_duration(parse_duration(e.at)), e.kind, e.rule, where, what)


def _row(t: Transition, start: int) -> Row:
    where = t.device or f"@{t.point}"
    what = (
        (t.level.label if t.level else "none")
        if t.kind == "hazard"
        else ("on" if t.active else "off")
    )
    return (format_duration(t.at - start) if t.at > start else "0s", t.kind, t.rule, where, what)


def run_case(case: CaseSpec, rules: tuple[Rule, ...], spec: RuleTestFile) -> CaseResult:
    devices, faults = context(spec)
    ruleset = RuleSet(rules, devices, faults, parse_duration(spec.lateness))
    start = int(case.start.timestamp() * 1000)
    history: list[Reading] = []
    for s in case.series:
        step = parse_duration(s.step)
        first = start + parse_duration(s.start)
        for i, v in enumerate(expand(s.values)):
            if v is not None:
                history.append(Reading(s.device, s.metric, first + i * step, v))
    until = start + parse_duration(case.until) if case.until else None
    transitions = replay(ruleset, history, tick_ms=parse_duration(spec.tick), until=until)
    got = [_row(t, start) for t in transitions]
    expected = [_expected_row(e) for e in case.expect]

    def order(r: Row) -> tuple[int, str, str, str]:
        return (parse_duration(r[0]), r[2], r[3], r[1])

    return CaseResult(case.name, sorted(expected, key=order), sorted(got, key=order))


def diff(result: CaseResult) -> list[str]:
    """Readable lines: what was expected but missing, and what came unexpectedly."""
    lines = []
    exp = list(result.expected)
    got = list(result.got)
    for row in list(exp):
        if row in got:
            got.remove(row)
            exp.remove(row)
    for row in exp:
        lines.append("  - expected  " + "  ".join(row))
    for row in got:
        lines.append("  + got       " + "  ".join(row))
    return lines
