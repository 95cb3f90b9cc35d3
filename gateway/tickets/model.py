"""Ticket decisions: what a rule transition does to the open ticket of its series.

Pure: the store looks up the open ticket, calls `decide`, and writes the action in the
same transaction as the readings that caused it. One open ticket per (rule, series): a
crossing opens it, a higher level raises it, anything else is an event on it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.core.model import Level
from rules.evaluator import Transition
from rules.reasons import ZH_LEVEL


class TicketKind(enum.StrEnum):
    HAZARD = "hazard"  # from a hazard rule: goes to responders
    DEVICE_FAULT = "device_fault"  # from fault detection and no-data rules: the technician
    WARNING = "warning"  # a level issued for a monitoring point: drives the call loop


class TicketState(enum.StrEnum):
    """Hazard lifecycle (发现→确认→管控→整改→核销); rules open tickets as discovered."""

    DISCOVERED = "discovered"  # 发现
    CONFIRMED = "confirmed"  # 确认
    CONTROLLED = "controlled"  # 管控
    RECTIFIED = "rectified"  # 整改
    CLOSED = "closed"  # 核销 (written off)
    DISMISSED = "dismissed"  # false alarm
    ISSUED = "issued"  # a warning in force
    LIFTED = "lifted"  # 解除预警


FINAL_STATES = (TicketState.CLOSED, TicketState.DISMISSED, TicketState.LIFTED)


class EventKind(enum.StrEnum):
    OPENED = "opened"
    RAISED = "raised"
    LEVEL_CHANGED = "level_changed"  # the series moved without raising the ticket
    CONDITION_CLEARED = "condition_cleared"  # a suggestion to close; only people close
    FAULT_CLEARED = "fault_cleared"  # the device behaves again; the technician closes
    FAULT_AGAIN = "fault_again"  # the fault came back while its ticket was open
    ACKNOWLEDGED = "acknowledged"
    STEP = "step"  # a lifecycle step by a person (confirm, control, …): see `note`/`role`
    REPORTED = "reported"  # entered by hand or from a handheld report
    WARNING_ISSUED = "warning_issued"
    WARNING_RAISED = "warning_raised"
    WARNING_LOWERED = "warning_lowered"
    SUGGEST_LOWER = "suggest_lower"  # a rule fell: a person decides
    CALLED = "called"
    ESCALATED = "escalated"  # 督导: nobody answered in time
    NOT_REACHED = "not_reached"  # every wave called: the not-reached list is the duty room's
    CALLS_STOPPED = "calls_stopped"  # lifted or lowered: calls in progress stopped
    BROADCAST = "broadcast"  # the village broadcast (村村响) announced the warning


@dataclass(frozen=True, slots=True)
class OpenTicket:
    id: int
    level: Level | None


@dataclass(frozen=True, slots=True)
class Open:
    kind: TicketKind
    level: Level | None


@dataclass(frozen=True, slots=True)
class Raise:
    ticket: int
    level: Level


@dataclass(frozen=True, slots=True)
class Note:
    """An event on the ticket that leaves its level alone."""

    ticket: int
    kind: EventKind


Action = Open | Raise | Note


def decide(ticket: OpenTicket | None, t: Transition) -> Action | None:
    if t.kind == "fault":
        if ticket is None:
            return Open(TicketKind.DEVICE_FAULT, None) if t.active else None
        return Note(ticket.id, EventKind.FAULT_AGAIN if t.active else EventKind.FAULT_CLEARED)
    if ticket is None:
        if t.level is not None and t.rising:
            return Open(TicketKind.HAZARD, t.level)
        return None
    if t.level is None:
        return Note(ticket.id, EventKind.CONDITION_CLEARED)
    if ticket.level is None or t.level > ticket.level:
        return Raise(ticket.id, t.level)
    return Note(ticket.id, EventKind.LEVEL_CHANGED)


def title(t: Transition, level: Level | None) -> str:
    if t.kind == "fault":
        where = f"{t.device} {t.metric}".strip()
        return f"设备故障：{where} {t.rule_name}"
    colour = ZH_LEVEL[level] if level else ""
    where = t.point if not t.device and t.point else t.device
    return f"{t.rule_name} {colour} {where}".strip()
