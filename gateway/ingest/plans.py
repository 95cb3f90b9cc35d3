"""Rule plans the county pushes down (#19 item 4), on the station's side.

A plan is `{"version", "hash", "rules": "<TOML text of a rules file>", "county": {…}}`;
`county` (optional) is what the station needs of the county: its name, its people — the
top step of the calling ladder, grid `county`, who replace the station file's county
people of the same ids while local people stay — and its escalation deadlines per level
(shown on the 叫应 board: when the county steps in). The hash covers both
(gateway/core/plans.py). The rules are checked
exactly as `stationgw rules check -c STATION_FILE` checks a file (the same parser,
against this station's devices and metrics), and across the local files like a reload
(`check_set`: duplicate ids, compound rules naming unknown rules) with the local rules
it names taken out: the plan's rule of an id replaces the local rule of that id; local
rules it does not name stay. A plan with any problem is refused whole and the rules
running stay as they are; a good one is applied like `stationgw rules reload` (a rule
keeps its state where its id and kind are unchanged) and kept in a file, so a restart
starts with it instead of dropping its rules' state until the county is heard again.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.config.loop import CountyPart, county_part_problems
from gateway.config.station import MAX_FILE_BYTES, Config
from gateway.core.errors import ConfigError
from gateway.core.plans import plan_hash
from gateway.core.validation import problems
from gateway.ingest.rules_loader import PlanRules, RulesLoader, device_context
from rules.model import Rule
from rules.schema import check_set, parse_rules

log = logging.getLogger("stationgw.rules")

PLAN_NAME = "county plan"  # how errors name the plan's text (as a file's name)


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What the station reports on `county.<st>.plan`."""

    version: str | None
    hash: str | None
    ok: bool
    errors: list[str] = field(default_factory=list)
    key: str | None = None

    def to_json(self, station: str, at: int) -> dict[str, Any]:
        return {
            "station": station,
            "at": at,
            "version": self.version,
            "hash": self.hash,
            "ok": self.ok,
            "errors": self.errors,
        }


def plan_path(cfg: Config) -> Path:
    """Where the plan running is kept: beside the station database."""
    return cfg.database.path.parent / "county_plan.json"


def parse_plan_text(text: str, cfg: Config) -> tuple[Rule, ...]:
    """The plan's rules, or ConfigError with every problem (as `rules check` says them)."""
    data = text.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(PLAN_NAME, [f"larger than {MAX_FILE_BYTES // 1048576} MiB"])
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(PLAN_NAME, [f"not valid TOML: {e}"]) from None
    except RecursionError:
        raise ConfigError(PLAN_NAME, ["not accepted: nested too deeply"]) from None
    except ValueError as e:
        raise ConfigError(PLAN_NAME, [f"not accepted: {e}"]) from None
    metrics = {m for d in cfg.devices for m in d.metrics}
    return parse_rules(doc, PLAN_NAME, devices=device_context(cfg), metrics=metrics)


def check_plan(body: Any, key: str, loader: RulesLoader) -> PlanRules | PlanResult:
    """A plan message from the key-value bucket: its rules ready to apply, or the result
    that refuses it (with every problem)."""
    if not isinstance(body, dict):
        return PlanResult(None, None, False, ["the plan is not a JSON object"], key)
    version, digest, text = body.get("version"), body.get("hash"), body.get("rules")
    if not isinstance(version, str) or not version:
        return PlanResult(None, None, False, ["version: missing"], key)
    if not isinstance(text, str):
        return PlanResult(version, None, False, ["rules: missing (TOML text)"], key)
    raw_county = body.get("county")
    if raw_county is not None and not isinstance(raw_county, dict):
        return PlanResult(version, None, False, ["county: not a JSON object"], key)
    if digest != plan_hash(text, raw_county):
        return PlanResult(
            version, str(digest), False, ["hash: does not match the rules and county part"], key
        )
    county, errors = parse_county(raw_county, loader.config)
    try:
        rules = parse_plan_text(text, loader.config)
    except ConfigError as e:
        errors += [f"{PLAN_NAME}: {p}" for p in e.problems]
        rules = ()
    if errors:
        return PlanResult(version, digest, False, errors, key)
    named = {r.id for r in rules}
    across = check_set({**loader.local_without(named), PLAN_NAME: rules})
    if across:
        return PlanResult(version, digest, False, across, key)
    return PlanRules(version, digest, key, text, rules, county, raw_county)


def parse_county(raw: dict[str, Any] | None, cfg: Config) -> tuple[CountyPart | None, list[str]]:
    """The county part, checked like the station file's `[[people]]` (key paths under
    `county.`), or every problem found."""
    if raw is None:
        return None, []
    try:
        part = CountyPart.model_validate(raw)
    except ValidationError as e:
        return None, [f"county.{p}" for p in problems(e)]
    found = county_part_problems(part, cfg.people)
    return (None, found) if found else (part, [])


def save(path: Path, plan: PlanRules) -> None:
    """Keep the plan running (atomically: a crash leaves the old file or the new)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "version": plan.version,
                "hash": plan.hash,
                "key": plan.key,
                "rules": plan.text,
                "county": plan.county_json,
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    os.replace(tmp, path)


def load_saved(path: Path, loader: RulesLoader) -> PlanResult | None:
    """At start, before the first ruleset: the plan that ran before the restart, checked
    again against this station file (a changed file may refuse it)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.error("county plan %s unreadable (%s); starting with the local rules only", path, e)
        return None
    key = str(body.get("key") or "all") if isinstance(body, dict) else "all"
    checked = check_plan(body, key, loader)
    if isinstance(checked, PlanResult):
        log.error("county plan %s refused at start: %s", path, "; ".join(checked.errors))
        return checked
    loader.plan = checked
    return PlanResult(checked.version, checked.hash, True, [], key)
