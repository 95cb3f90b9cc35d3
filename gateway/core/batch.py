"""What a driver hands the pipeline: one batch of readings, quarantined messages and device
statuses, committed in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.model import Reading


@dataclass(frozen=True, slots=True)
class Quarantined:
    received_at: int
    source: str
    reason: str
    payload: bytes


@dataclass(slots=True)
class Batch:
    readings: list[Reading] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    statuses: dict[str, tuple[bool, int]] = field(default_factory=dict)  # device -> (on, at)
    seen: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # device -> (at, seq)
    seqs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # device -> (seq, ts)
    # reports sent without `ts`: (device, seq or None, digest of values, ts given); a
    # redelivery is recognised by (device, seq, digest) (gateway/ingest/untimed.py)
    untimed: list[tuple[str, int | None, int, int]] = field(default_factory=list)
