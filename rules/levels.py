"""The level state machine every hazard rule shares: `for`, `keep_for`, transitions.

A rule kind computes a raw level from its data (with its own hysteresis); `step` turns
the raw levels into reached levels, and `tick` lets time pass without data so a `for` or
a `keep_for` can complete on time.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.model import Level
from rules.model import Timing

Change = tuple[Level | None, Level | None]  # (previous, new)


@dataclass(slots=True)
class LevelState:
    level: Level | None = None  # the level reached
    raw: Level | None = None  # what the data says now
    pending_since: int | None = None  # raw above level since (waiting for `for`)
    below_since: int | None = None  # raw below level since (waiting for `keep_for`)
    last_ts: int = 0  # newest data time judged

    def to_json(self) -> dict[str, int | None]:
        return {
            "level": int(self.level) if self.level else None,
            "raw": int(self.raw) if self.raw else None,
            "pending_since": self.pending_since,
            "below_since": self.below_since,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_json(cls, d: dict[str, int | None]) -> LevelState:
        def lv(v: int | None) -> Level | None:
            return Level(v) if v else None

        return cls(
            level=lv(d.get("level")),
            raw=lv(d.get("raw")),
            pending_since=d.get("pending_since"),
            below_since=d.get("below_since"),
            last_ts=d.get("last_ts") or 0,
        )


def _set(state: LevelState, level: Level | None) -> Change | None:
    previous = state.level
    state.level = level
    state.pending_since = None
    state.below_since = None
    return (previous, level) if previous != level else None


def step(state: LevelState, raw: Level | None, t: int, timing: Timing) -> Change | None:
    """Feed the raw level the data gives at time t; return a change of the reached level."""
    state.raw = raw
    current = state.level
    if raw is not None and (current is None or raw > current):
        state.below_since = None
        if state.pending_since is None:
            state.pending_since = t
        if t - state.pending_since >= timing.for_ms:
            return _set(state, raw)
        return None
    state.pending_since = None
    if raw == current:
        state.below_since = None
        return None
    if state.below_since is None:
        state.below_since = t
    if t - state.below_since >= timing.keep_for_ms:
        return _set(state, raw)
    return None


def tick(state: LevelState, now: int, timing: Timing) -> Change | None:
    """Time passes with no new data: a pending level or a kept level may complete."""
    if state.pending_since is not None and now - state.pending_since >= timing.for_ms:
        return _set(state, state.raw)
    if state.below_since is not None and now - state.below_since >= timing.keep_for_ms:
        return _set(state, state.raw)
    return None


def waiting(state: LevelState) -> bool:
    return state.pending_since is not None or state.below_since is not None
