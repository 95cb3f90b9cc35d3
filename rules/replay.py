"""Run rules over a history of readings (pure): what would they have said?"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from gateway.core.model import Reading
from rules.evaluator import RuleSet, State, Transition, evaluate, screen, tick


def replay(
    ruleset: RuleSet, history: Iterable[Reading], *, tick_ms: int = 60_000, until: int | None = None
) -> Iterator[Transition]:
    """Feed readings in time order (now = each reading's time), letting time pass between
    them in `tick_ms` steps so that `for`, `keep_for` and no-data timers fire on time."""
    state = State()
    next_tick: int | None = None
    for r in sorted(history, key=lambda r: r.ts):
        if next_tick is None:
            next_tick = r.ts
            yield from tick(ruleset, state, r.ts)  # start the no-data counters
        while next_tick + tick_ms < r.ts:
            next_tick += tick_ms
            yield from tick(ruleset, state, next_tick)
        flagged, faults = screen(ruleset, state, [r], r.ts)
        yield from faults
        yield from evaluate(ruleset, state, flagged, r.ts)
    if until is not None and next_tick is not None:
        while next_tick + tick_ms <= until:
            next_tick += tick_ms
            yield from tick(ruleset, state, next_tick)


def transition_json(t: Transition) -> dict[str, object]:
    """A transition as the replay answers it (CLI and the page): ISO time, level labels."""
    return {
        "ts": datetime.fromtimestamp(t.at / 1000, UTC).isoformat().replace("+00:00", "Z"),
        "kind": t.kind,
        "rule": t.rule,
        "device": t.device,
        "metric": t.metric,
        "point": t.point,
        "previous": t.previous.label if t.previous else "none",
        "level": t.level.label if t.level else "none",
        "active": t.active,
        "value": t.value,
        "reason_zh": t.reason_zh,
        "reason_en": t.reason_en,
    }
