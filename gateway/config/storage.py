"""The `[storage]` section: compaction, retention per resolution, the disk guard."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rules.durations import parse_duration


def _duration_or_forever(v: str) -> str:
    if v != "forever":
        parse_duration(v)
    return v


def ms(v: str) -> int | None:
    """A duration in ms; None for "forever"."""
    return None if v == "forever" else parse_duration(v)


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    raw: str = "90d"  # readings themselves (rows and chunks)
    rollup_1m: str = "730d"
    rollup_1h: str = "forever"
    rollup_1d: str = "forever"

    _check = field_validator("raw", "rollup_1m", "rollup_1h", "rollup_1d")(_duration_or_forever)


class StorageSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hot: str = "2d"  # readings newer than this stay rows; older whole UTC days become chunks
    every: str = "10m"  # how often compaction, retention and the disk guard run
    retention: Retention = Retention()
    min_free_mb: float = Field(default=256, ge=0)  # the disk guard's floor on the data folder
    guard_keep_raw: str = "7d"  # the guard never drops raw readings newer than this
    # group commit: a small batch waits for more up to this long after its oldest message
    # arrived, so a township's trickle commits (and writes flash pages) a few times a second
    # instead of once per message; an acknowledgement is sent at most this long after
    # arrival plus the commit itself. 0: commit each gathered read at once.
    commit_wait_ms: int = Field(default=200, ge=0, le=5000)

    @field_validator("hot", "every", "guard_keep_raw")
    @classmethod
    def _durations(cls, v: str) -> str:
        parse_duration(v)
        return v
