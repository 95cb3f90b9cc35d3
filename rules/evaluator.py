"""Evaluate readings against rules. Pure: no IO, no clock; `now` is an argument.

State is kept per (rule, device, metric) series and returned as updates, never mutated
in place, so the caller can persist exactly what changed in the same transaction as the
readings that changed it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.model import Level, Reading
from rules.model import Rule

SeriesKey = tuple[str, str, str]  # (rule id, device, metric)


@dataclass(frozen=True, slots=True)
class SeriesState:
    level: Level | None
    last_ts: int  # newest reading evaluated; older ones are stored but not re-judged


@dataclass(frozen=True, slots=True)
class Transition:
    """A series changed level (None means the condition cleared)."""

    rule: str
    rule_name: str
    device: str
    metric: str
    previous: Level | None
    level: Level | None
    value: float
    ts: int
    at: int  # `now` when it was decided

    @property
    def rising(self) -> bool:
        return (self.level or 0) > (self.previous or 0)


@dataclass(frozen=True, slots=True)
class Evaluation:
    transitions: tuple[Transition, ...]
    updates: dict[SeriesKey, SeriesState]


class RuleSet:
    """Rules indexed by metric so each reading meets only the rules that can match it."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        by_metric: dict[str, list[Rule]] = defaultdict(list)
        for r in self.rules:
            by_metric[r.metric].append(r)
        self.by_metric: dict[str, tuple[Rule, ...]] = {m: tuple(v) for m, v in by_metric.items()}


def evaluate(
    ruleset: RuleSet,
    state: Mapping[SeriesKey, SeriesState],
    readings: Iterable[Reading],
    now: int,
) -> Evaluation:
    """Judge a batch of readings in timestamp order; return level changes and new state."""
    updates: dict[SeriesKey, SeriesState] = {}
    transitions: list[Transition] = []
    candidates = [r for r in readings if r.flags == 0 and r.metric in ruleset.by_metric]
    candidates.sort(key=lambda r: r.ts)
    for reading in candidates:
        for rule in ruleset.by_metric[reading.metric]:
            if not rule.applies_to(reading.device):
                continue
            key = (rule.id, reading.device, reading.metric)
            current = updates.get(key) or state.get(key)
            if current is not None and reading.ts <= current.last_ts:
                continue  # late or repeated: stored, but the series has moved on
            previous = current.level if current else None
            level = rule.level_for(reading.value)
            updates[key] = SeriesState(level=level, last_ts=reading.ts)
            if level != previous:
                transitions.append(
                    Transition(
                        rule=rule.id,
                        rule_name=rule.name,
                        device=reading.device,
                        metric=reading.metric,
                        previous=previous,
                        level=level,
                        value=reading.value,
                        ts=reading.ts,
                        at=now,
                    )
                )
    return Evaluation(tuple(transitions), updates)
