"""Ticket decisions: what a rule transition does to the open ticket of its series.

Pure: the store looks up the open ticket, calls `decide`, and writes the action in the
same transaction as the readings that caused it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.model import Level
from rules.evaluator import Transition


class TicketKind(enum.StrEnum):
    HAZARD = "hazard"


class TicketState(enum.StrEnum):
    """Hazard lifecycle (发现→确认→管控→整改→核销); the spine opens tickets as discovered."""

    DISCOVERED = "discovered"
    CLOSED = "closed"
    DISMISSED = "dismissed"


FINAL_STATES = (TicketState.CLOSED, TicketState.DISMISSED)


class EventKind(enum.StrEnum):
    OPENED = "opened"
    RAISED = "raised"
    LEVEL_CHANGED = "level_changed"  # the series moved without raising the ticket
    CONDITION_CLEARED = "condition_cleared"  # a suggestion to close; only people close
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class OpenTicket:
    id: int
    level: Level


@dataclass(frozen=True, slots=True)
class Open:
    level: Level


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
    """One ticket per (rule, series): open on a crossing, raise on a higher level."""
    if ticket is None:
        if t.level is not None and t.rising:
            return Open(t.level)
        return None
    if t.level is None:
        return Note(ticket.id, EventKind.CONDITION_CLEARED)
    if t.level > ticket.level:
        return Raise(ticket.id, t.level)
    return Note(ticket.id, EventKind.LEVEL_CHANGED)


def title(rule_name: str, level: Level) -> str:
    colour = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
    return f"{rule_name} {colour[level]}"
