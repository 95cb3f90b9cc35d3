"""Built-in sensor-fault detection (pure): a broken sensor is a fault, never a hazard.

Per (device, metric), from the metric's declared physical range and plausibility
settings: out of range, stuck value, impossible jump, supply or battery under its floor.
Faulty values are flagged (stored, never judged); each fault type opens and clears as a
fault transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway.core.model import FLAG_JUMP, FLAG_OUT_OF_RANGE, FLAG_STUCK, Reading

FaultType = Literal["range", "stuck", "jump", "low_supply", "no_data"]
JUMP_CONFIRM = 3  # consecutive mutually plausible readings accept a new baseline


@dataclass(frozen=True, slots=True)
class FaultSpec:
    min: float
    max: float
    stuck_after_ms: int | None = None
    max_jump: float | None = None
    fault_below: float | None = None


@dataclass(slots=True)
class FaultState:
    last_ts: int = 0
    last_value: float | None = None
    same_since: int | None = None
    baseline: float | None = None
    candidates: list[float] = field(default_factory=list)
    active: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, object]:
        return {
            "last_ts": self.last_ts,
            "last_value": self.last_value,
            "same_since": self.same_since,
            "baseline": self.baseline,
            "candidates": self.candidates,
            "active": sorted(self.active),
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> FaultState:
        return cls(
            last_ts=int(d.get("last_ts") or 0),  # type: ignore[call-overload]
            last_value=d.get("last_value"),  # type: ignore[arg-type]
            same_since=d.get("same_since"),  # type: ignore[arg-type]
            baseline=d.get("baseline"),  # type: ignore[arg-type]
            candidates=list(d.get("candidates") or []),  # type: ignore[call-overload]
            active=set(d.get("active") or []),  # type: ignore[call-overload]
        )


@dataclass(frozen=True, slots=True)
class FaultChange:
    fault: FaultType
    active: bool
    reading: Reading
    detail: str  # what was seen, for the reason text


def screen(
    spec: FaultSpec, state: FaultState, reading: Reading
) -> tuple[Reading, list[FaultChange]]:
    """Judge one reading (in time order) for faults; return it flagged and the changes."""
    changes: list[FaultChange] = []
    v = reading.value
    flags = reading.flags

    def turn(fault: FaultType, on: bool, detail: str) -> None:
        if on and fault not in state.active:
            state.active.add(fault)
            changes.append(FaultChange(fault, True, reading, detail))
        elif not on and fault in state.active:
            state.active.discard(fault)
            changes.append(FaultChange(fault, False, reading, detail))

    out_of_range = not (spec.min <= v <= spec.max)
    if out_of_range:
        flags |= FLAG_OUT_OF_RANGE
    turn("range", out_of_range, f"[{spec.min:g}, {spec.max:g}]")

    if reading.ts <= state.last_ts:  # late or repeated: only the range can be judged
        return (reading if flags == reading.flags else reading._replace(flags=flags)), changes

    if spec.stuck_after_ms is not None and not out_of_range:
        if state.last_value is None or v != state.last_value or state.same_since is None:
            state.same_since = reading.ts
        stuck = reading.ts - state.same_since >= spec.stuck_after_ms
        if stuck:
            flags |= FLAG_STUCK
        turn("stuck", stuck, f"{(reading.ts - state.same_since) / 60000:.0f} min")

    if spec.max_jump is not None and not out_of_range:
        base = state.baseline
        if base is None or abs(v - base) <= spec.max_jump:
            state.baseline = v
            state.candidates.clear()
            turn("jump", False, f"{spec.max_jump:g}")
        else:
            cands = state.candidates
            if cands and abs(v - cands[-1]) > spec.max_jump:
                cands.clear()
            cands.append(v)
            if len(cands) >= JUMP_CONFIRM:  # the new level is real: accept it
                state.baseline = v
                cands.clear()
                turn("jump", False, f"{spec.max_jump:g}")
            else:
                flags |= FLAG_JUMP
                turn("jump", True, f"{base:g} → {v:g} > {spec.max_jump:g}")

    if spec.fault_below is not None and not out_of_range:
        turn("low_supply", v < spec.fault_below, f"{spec.fault_below:g}")

    state.last_ts = reading.ts
    state.last_value = v
    return (reading if flags == reading.flags else reading._replace(flags=flags)), changes
