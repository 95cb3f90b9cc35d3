"""What people do to tickets through the API: lifecycle steps, lowering a warning,
reporting a hazard by hand, shift handovers. Each runs in its own transaction on the
writer thread; the decisions are `gateway.tickets.lifecycle.take`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gateway.core.errors import TicketConflict, TicketError, TicketNotFound
from gateway.core.model import Level
from gateway.tickets.lifecycle import Actor, Done, Policy, Step, Subject, due, take
from gateway.tickets.model import FINAL_STATES, EventKind, TicketKind, TicketState
from gateway.tickets.people import People
from gateway.tickets.store import StationStore, Ticket
from rules.reasons import ZH_LEVEL

if TYPE_CHECKING:
    from gateway.config.station import Point

FINAL = tuple(str(s) for s in FINAL_STATES)


class StepRefused(TicketError):
    def __init__(self, why: str, message: str) -> None:
        self.why = why
        super().__init__(message)


class TicketActions:
    """Mixed into `Desk`, which holds these."""

    store: StationStore
    people: People
    policy: Policy
    points: dict[str, Point]
    # from `Fanout`: end a round's calls, hang up voice calls, tell those called
    stop_round: Callable[[Ticket, str, str, int], list[str]]

    def _who(self, by: str, role: str | None) -> str:
        """The name of who acts; with a people file, only its people, in their roles."""
        person = self.people.find(by)
        if person is None and self.people.by_id:
            raise StepRefused("role", f"{by} is not in the people file")
        if person is not None and role is not None and role not in person.roles:
            raise StepRefused("role", f"{person.name} does not have the role {role}")
        return person.name if person else by

    def _close_pending(self, ticket_id: int, outcome: str) -> None:
        self.store.conn.execute(
            "UPDATE calls SET outcome = ? WHERE ticket_id = ? AND outcome = 'pending'",
            (outcome, ticket_id),
        )

    def _warning_title(self, point: str, level: Level) -> str:
        pt = self.points.get(point)
        return f"{pt.name if pt else point} {ZH_LEVEL[level]}预警"

    def step(
        self,
        ticket_id: int,
        step: Step,
        by: str,
        role: str,
        note: str | None,
        attachments: Iterable[str],
        now: int,
    ) -> Ticket:
        with self.store.transaction():
            tk = self.store.ticket(ticket_id)
            if tk is None:
                raise TicketNotFound(f"ticket {ticket_id} does not exist")
            name = self._who(by, role)
            rectified = self.store.conn.execute(
                "SELECT actor FROM ticket_events WHERE ticket_id = ? AND kind = 'step' AND "
                "note LIKE 'rectify%' ORDER BY id DESC LIMIT 1",
                (ticket_id,),
            ).fetchone()
            subject = Subject(tk.kind, tk.state, tk.level, rectified[0] if rectified else None)
            result = take(subject, step, Actor(name, role), note, now, self.policy)
            if not isinstance(result, Done):
                raise StepRefused(result.why, result.message)
            self.store.conn.execute(
                "UPDATE tickets SET state = ?, due_at = ?, updated_at = ?, suggestion = NULL "
                "WHERE id = ?",
                (str(result.state), result.due_at, now, ticket_id),
            )
            text = f"{step}: {note}" if note else str(step)
            self.store.add_event(
                ticket_id, now, EventKind.STEP, name, note=text, role=role, attachments=attachments
            )
            if step == Step.LIFT:
                told = self.stop_round(tk, "lifted", f"{tk.title}已解除，停止叫应，无需回复", now)
                self.store.add_event(
                    ticket_id, now, EventKind.CALLS_STOPPED, name, note="、".join(told)
                )
        out = self.store.ticket(ticket_id)
        assert out is not None
        return out

    def lower(self, ticket_id: int, level: Level, by: str, role: str, now: int) -> Ticket:
        """A person lowers a warning after the rule's suggestion (no new calls)."""
        with self.store.transaction():
            tk = self.store.ticket(ticket_id)
            if tk is None:
                raise TicketNotFound(f"ticket {ticket_id} does not exist")
            if tk.kind != TicketKind.WARNING or tk.state in FINAL:
                raise TicketConflict(f"ticket {ticket_id} is not a warning in force")
            if tk.level is not None and level >= tk.level:
                raise TicketConflict("lowering needs a lower level; raising is the rules' job")
            if role not in self.policy.roles.get("lift", frozenset()):
                raise StepRefused("role", f"a {role} may not lower a warning")
            by = self._who(by, role)
            assert tk.point is not None
            self.store.conn.execute(
                "UPDATE tickets SET level = ?, title = ?, updated_at = ?, suggestion = NULL "
                "WHERE id = ?",
                (int(level), self._warning_title(tk.point, level), now, ticket_id),
            )
            self.store.conn.execute(
                "UPDATE warning_state SET level = ? WHERE ticket_id = ?", (int(level), ticket_id)
            )
            self.store.add_event(
                ticket_id, now, EventKind.WARNING_LOWERED, by, level=level, role=role
            )
            said = f"{tk.title}已降为{ZH_LEVEL[level]}预警，本轮叫应停止，无需回复"
            told = self.stop_round(tk, "stopped", said, now)
            self.store.add_event(ticket_id, now, EventKind.CALLS_STOPPED, by, note="、".join(told))
        out = self.store.ticket(ticket_id)
        assert out is not None
        return out

    def report(
        self,
        *,
        title: str,
        point: str | None,
        level: Level | None,
        by: str,
        role: str | None,
        note: str | None,
        attachments: Iterable[str],
        now: int,
    ) -> Ticket:
        """A hazard entered by hand or from a handheld report: its own ticket. Anyone may
        report (a known person is recorded by name)."""
        if point is not None and point not in self.points:
            raise StepRefused("reason", f"unknown monitoring point {point!r}")
        person = self.people.find(by)
        by = person.name if person else by
        with self.store.transaction():
            tid = self.store.open_ticket(
                kind=TicketKind.HAZARD,
                level=level,
                title=title,
                device=None,
                metric=None,
                point=point,
                rule=None,
                value=None,
                reason=note,
                actor=by,
                at=now,
            )
            self.store.add_event(
                tid, now, EventKind.REPORTED, by, note=note, role=role, attachments=attachments
            )
            d = due(self.policy, TicketKind.HAZARD, TicketState.DISCOVERED, level, now)
            self.store.conn.execute(
                "UPDATE tickets SET code = ?, due_at = ? WHERE id = ?", (f"{tid:04d}", d, tid)
            )
        out = self.store.ticket(tid)
        assert out is not None
        return out

    def handover(
        self, from_person: str, to_person: str, note: str | None, now: int
    ) -> dict[str, Any]:
        """A shift handover: the open tickets and warnings listed automatically."""
        with self.store.transaction():
            items = [
                {
                    "id": t.id,
                    "kind": t.kind,
                    "level": t.level.label if t.level else None,
                    "state": t.state,
                    "title": t.title,
                    "overdue": t.overdue(now),
                    "acknowledged_by": t.acknowledged_by,
                }
                for t in self.store.tickets(open_only=True)
            ]
            row = self.store.conn.execute(
                "INSERT INTO handovers (at, from_person, to_person, note, open_items) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (now, from_person, to_person, note, json.dumps(items, ensure_ascii=False)),
            ).fetchone()
        return {
            "id": int(row[0]),
            "at": now,
            "from": from_person,
            "to": to_person,
            "note": note,
            "open": items,
        }

    # --- deliveries (the dispatcher) -------------------------------------------------
