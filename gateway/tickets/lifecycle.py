"""The ticket lifecycle (发现→确认→管控→整改→核销): which step, by which role, from which state.

Pure: the caller hands in the ticket as it stands, the step, who takes it and `now`; the
answer is the new state and the deadline of the next step, or a refusal with its reason.
Every allowed transition is in `take`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.core.model import Level
from gateway.tickets.model import TicketKind, TicketState


class Step(enum.StrEnum):
    CONFIRM = "confirm"  # 确认
    CONTROL = "control"  # 管控
    RECTIFY = "rectify"  # 整改
    CLOSE = "close"  # 核销 (write-off): a second person
    DISMISS = "dismiss"  # false alarm; a reason is required
    LIFT = "lift"  # 解除预警; a reason is required


S = TicketState
# (from, to) per step and ticket kind
FLOWS: dict[str, dict[Step, tuple[TicketState, TicketState]]] = {
    TicketKind.HAZARD: {
        Step.CONFIRM: (S.DISCOVERED, S.CONFIRMED),
        Step.CONTROL: (S.CONFIRMED, S.CONTROLLED),
        Step.RECTIFY: (S.CONTROLLED, S.RECTIFIED),
        Step.CLOSE: (S.RECTIFIED, S.CLOSED),
    },
    TicketKind.DEVICE_FAULT: {  # the technician confirms, repairs, writes off
        Step.CONFIRM: (S.DISCOVERED, S.CONFIRMED),
        Step.RECTIFY: (S.CONFIRMED, S.RECTIFIED),
        Step.CLOSE: (S.RECTIFIED, S.CLOSED),
    },
    TicketKind.WARNING: {},
}
NEEDS_REASON = (Step.DISMISS, Step.LIFT)


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Subject:
    """The ticket as the lifecycle sees it."""

    kind: str
    state: str
    level: Level | None
    rectified_by: str | None = None  # who recorded the rectification (整改)


@dataclass(frozen=True, slots=True)
class Policy:
    roles: Mapping[str, frozenset[str]]  # step -> roles, hazards and warnings
    fault_roles: Mapping[str, frozenset[str]]  # step -> roles, device faults
    deadlines: Mapping[tuple[str, Level], int] = field(default_factory=dict)  # ms

    def allowed(self, kind: str, step: Step) -> frozenset[str]:
        table = self.fault_roles if kind == TicketKind.DEVICE_FAULT else self.roles
        return table.get(str(step), frozenset())


@dataclass(frozen=True, slots=True)
class Done:
    state: TicketState
    due_at: int | None  # deadline of the step that follows, None when none is set


@dataclass(frozen=True, slots=True)
class Refused:
    why: str  # "role", "state", "same_person", "reason"
    message: str


def next_step(kind: str, state: str) -> Step | None:
    for step, (src, _) in FLOWS.get(kind, {}).items():
        if src == state:
            return step
    return None


def due(policy: Policy, kind: str, state: str, level: Level | None, now: int) -> int | None:
    """Deadline of the step that follows `state` (stage deadlines per level)."""
    step = next_step(kind, state)
    if step is None or level is None:
        return None
    ms = policy.deadlines.get((str(step), level))
    return now + ms if ms is not None else None


def take(
    subject: Subject, step: Step, actor: Actor, note: str | None, now: int, policy: Policy
) -> Done | Refused:
    final = {str(s) for s in (S.CLOSED, S.DISMISSED, S.LIFTED)}
    if subject.state in final:
        return Refused("state", f"the ticket is already {subject.state}")
    if actor.role not in policy.allowed(subject.kind, step):
        return Refused("role", f"a {actor.role} may not {step} a {subject.kind} ticket")
    if step in NEEDS_REASON and not (note or "").strip():
        return Refused("reason", f"{step} needs a reason (note)")
    if step == Step.LIFT:
        if subject.kind != TicketKind.WARNING:
            return Refused("state", "only warnings are lifted; hazards are closed or dismissed")
        return Done(S.LIFTED, None)
    if step == Step.DISMISS:
        if subject.kind == TicketKind.WARNING:
            return Refused("state", "a warning is lifted, not dismissed")
        return Done(S.DISMISSED, None)
    flow = FLOWS.get(subject.kind, {}).get(step)
    if flow is None:
        return Refused("state", f"a {subject.kind} ticket has no step {step}")
    src, dst = flow
    if subject.state != src:
        return Refused("state", f"{step} needs a {src} ticket; this one is {subject.state}")
    if step == Step.CLOSE and subject.rectified_by == actor.name:
        return Refused(
            "same_person",
            f"the write-off needs a second person: {actor.name} recorded the rectification",
        )
    return Done(dst, due(policy, subject.kind, dst, subject.level, now))
