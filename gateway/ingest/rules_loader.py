"""Rule files on disk: load a file or a folder, reload what changed, keep what runs.

A file with errors is rejected whole (its errors logged and shown in the API) and the
version of it that was running keeps running; the other files' changes apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.loop import CountyPart
from gateway.config.station import Config, read_toml
from gateway.core.errors import ConfigError
from rules.durations import parse_duration
from rules.evaluator import RuleSet
from rules.faults import FaultSpec
from rules.model import DeviceInfo, Rule
from rules.schema import check_set, parse_rules

log = logging.getLogger("stationgw.rules")


def device_context(cfg: Config) -> dict[str, DeviceInfo]:
    villages = {p.id: p.village for p in cfg.points}
    return {
        d.id: DeviceInfo(
            id=d.id,
            point=d.point,
            village=villages.get(d.point),
            tags=frozenset(d.tags),
            units=tuple((m, spec.unit) for m, spec in d.metrics.items()),
        )
        for d in cfg.devices
    }


def fault_specs(cfg: Config) -> dict[tuple[str, str], FaultSpec]:
    return {
        (d.id, m): FaultSpec(
            min=s.min,
            max=s.max,
            stuck_after_ms=parse_duration(s.stuck_after) if s.stuck_after else None,
            max_jump=s.max_jump,
            fault_below=s.fault_below,
        )
        for d in cfg.devices
        for m, s in d.metrics.items()
    }


def rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.toml") if not p.name.endswith("_test.toml"))
    return [path]


@dataclass(frozen=True, slots=True)
class PlanRules:
    """A rules plan the county pushed down, validated (gateway.ingest.plans): its rules
    replace the local rules of the same ids; local rules it does not name stay."""

    version: str
    hash: str
    key: str  # the key-value key it came from: all, group.<g>, station.<st>
    text: str
    rules: tuple[Rule, ...]
    county: CountyPart | None = None  # the county's people and deadlines, when sent
    county_json: dict[str, Any] | None = None  # as sent (what the hash covers), kept


@dataclass
class RulesLoader:
    config: Config
    good: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    plan: PlanRules | None = None

    def local_without(self, ids: set[str]) -> dict[str, tuple[Rule, ...]]:
        """The local files' rules, less those a plan names."""
        return {k: tuple(r for r in v if r.id not in ids) for k, v in self.good.items()}

    def ruleset(self) -> RuleSet:
        named = {r.id for r in self.plan.rules} if self.plan else set()
        rules = [r for name in sorted(self.good) for r in self.good[name] if r.id not in named]
        if self.plan is not None:
            rules += self.plan.rules
        return RuleSet(
            rules,
            device_context(self.config),
            fault_specs(self.config),
            parse_duration(self.config.rules.lateness),
        )

    def _stamp(self, p: Path) -> tuple[int, int]:
        try:
            st = p.stat()
        except OSError:
            return (-1, -1)
        return (st.st_mtime_ns, st.st_size)

    def changed(self) -> bool:
        path = self.config.rules.path
        if path is None:
            return False
        now = {str(p): self._stamp(p) for p in rule_files(path)}
        return now != self._seen

    def load(self) -> list[str]:
        """(Re)read the rule files; return the names of files whose rules changed."""
        path = self.config.rules.path
        if path is None:
            return []
        files = rule_files(path)
        stamps = {str(p): self._stamp(p) for p in files}
        ctx = device_context(self.config)
        metrics = {m for d in self.config.devices for m in d.metrics}
        candidate = {k: v for k, v in self.good.items() if k in stamps}
        touched: list[str] = [k for k in self.good if k not in stamps]  # deleted files
        for p in files:
            name = str(p)
            if self._seen.get(name) == stamps[name] and name in self.good:
                continue
            try:
                candidate[name] = parse_rules(read_toml(p), name, devices=ctx, metrics=metrics)
            except ConfigError as e:
                self.errors[name] = e.problems
                for problem in e.problems:
                    log.error("rules rejected: %s: %s", name, problem)
                if name in self.good:
                    log.warning("%s: keeping the rules that were running from it", name)
                continue
            self.errors.pop(name, None)
            touched.append(name)
        across = check_set(candidate)
        if across:
            for problem in across:
                log.error("rules rejected: %s", problem)
            for name in touched:
                self.errors[name] = across
                if name in self.good:
                    candidate[name] = self.good[name]
                else:
                    candidate.pop(name, None)
            touched = []
        for name in [k for k in self.errors if k not in stamps]:
            del self.errors[name]
        self.good = candidate
        self._seen = stamps
        return touched
