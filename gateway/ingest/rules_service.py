"""Rules in a running gateway: reload (file change, SIGHUP, API) and the timer tick."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config.loop import CountyPart
from gateway.core import clock
from gateway.core.errors import StoreError
from gateway.ingest.commit import Ingestor
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.rules_loader import RulesLoader
from rules.durations import format_duration
from rules.evaluator import RuleSet
from rules.model import Rule

if TYPE_CHECKING:
    from gateway.ingest.plans import PlanResult

log = logging.getLogger("stationgw.rules")


def describe(rule: Rule) -> dict[str, Any]:
    """A rule as the API and `stationgw rules check` show it."""
    out: dict[str, Any] = {"id": rule.id, "name": rule.name, "kind": rule.kind}
    metric = getattr(rule, "metric", None)
    if metric:
        out["metric"] = metric
    scope = getattr(rule, "scope", None)
    if scope is not None and scope.devices is not None:
        out["devices"] = sorted(scope.devices)
    if hasattr(rule, "limits"):
        out["levels"] = {lv.label: v for lv, v in rule.limits}
    if hasattr(rule, "windows"):
        out["windows"] = {
            format_duration(w.ms): {lv.label: v for lv, v in w.limits} for w in rule.windows
        }
    return out


class RulesService:
    def __init__(
        self, loader: RulesLoader, ingestor: Ingestor, writer: Executor, pipeline: Pipeline
    ) -> None:
        self.loader = loader
        self.ingestor = ingestor
        self.writer = writer
        self.pipeline = pipeline
        self.loaded_at = time.time()
        self._lock = asyncio.Lock()
        self.on_reload: Callable[[], Any] | None = None  # e.g. store the station file again
        # the county part of a plan applied (its people and deadlines), on the writer thread
        self.on_plan: Callable[[CountyPart | None], None] | None = None

    def status(self) -> dict[str, Any]:
        plan = self.loader.plan
        return {
            "rules": [describe(r) for r in self.ingestor.ruleset.rules],
            "files": sorted(self.loader.good),
            "errors": self.loader.errors,
            "loaded_at": int(self.loaded_at * 1000),
            "plan": (
                {"version": plan.version, "hash": plan.hash, "key": plan.key}
                if plan is not None
                else None
            ),
        }

    async def apply_plan(self, body: Any, key: str, keep: Path | None = None) -> PlanResult:
        """A rules plan from the county (gateway.ingest.plans): checked like `rules check`,
        applied like a reload; a refused plan leaves the running rules as they are."""
        from gateway.ingest.plans import PlanResult, check_plan, save

        async with self._lock:
            checked = check_plan(body, key, self.loader)
            if isinstance(checked, PlanResult):
                for problem in checked.errors:
                    log.error("county plan %s refused: %s", checked.version, problem)
                return checked
            loop = asyncio.get_running_loop()
            old = self.loader.plan
            self.loader.plan = checked

            def swap(ruleset: RuleSet) -> None:
                self.ingestor.replace_rules(ruleset)
                if self.on_plan is not None:
                    self.on_plan(checked.county)

            try:
                await loop.run_in_executor(self.writer, swap, self.loader.ruleset())
            except Exception:
                self.loader.plan = old
                raise
            if keep is not None:
                await loop.run_in_executor(None, save, keep, checked)
            self.loaded_at = time.time()
            log.info(
                "county plan %s (%s) applied: %d rules, %d county people",
                checked.version,
                key,
                len(checked.rules),
                len(checked.county.people) if checked.county else 0,
            )
            return PlanResult(checked.version, checked.hash, True, [], key)

    async def reload(self, why: str) -> dict[str, Any]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            changed = self.loader.load()
            if changed:
                await loop.run_in_executor(
                    self.writer, self.ingestor.replace_rules, self.loader.ruleset()
                )
                self.loaded_at = time.time()
                log.info("rules reloaded (%s): %s", why, ", ".join(changed))
                if self.on_reload is not None:
                    await loop.run_in_executor(self.writer, self.on_reload)
            elif not self.loader.errors:
                log.info("rules reload (%s): nothing changed", why)
            return {"changed": changed, **self.status()}

    async def watch(self, interval_s: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if self.loader.changed():
                await self.reload("file changed")

    async def ticks(self, interval_s: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s)
            now = clock.now_ms()
            clock.CLOCK.check()  # a jump of the system clock is logged, not followed
            try:
                outcome = await loop.run_in_executor(self.writer, self.ingestor.tick, now)
            except (sqlite3.Error, StoreError, OSError) as e:
                log.error("rule timers could not be stored (%s); retrying", e)
                continue
            if outcome.transitions:
                self.pipeline.announce(outcome)
