"""The station database's ticket half: the ledger's tickets and their events (隐患台账).

`StationStore` is the storage room's `Store` with the ticket SQL on it; the composition
root opens this one, and the rooms that read or write tickets take it. The storage room
itself (readings, chunks, compaction, retention) never needs it, so storage/ imports
nothing of tickets/.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.core.errors import TicketConflict, TicketNotFound
from gateway.core.model import Level
from gateway.storage.store import Store
from gateway.tickets.model import FINAL_STATES, EventKind, OpenTicket, TicketKind, TicketState

_FINAL = tuple(str(s) for s in FINAL_STATES)
# written so that it contains the partial indexes' own condition, which SQLite must see
# verbatim to use them: `state NOT IN ('closed', 'dismissed')`, then the other final states
_OPEN_CLAUSE = "state NOT IN ('closed', 'dismissed')" + "".join(
    f" AND state <> {s!r}" for s in _FINAL if s not in ("closed", "dismissed")
)


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    kind: str
    level: Level | None  # None for device faults: they have no warning colour
    state: str
    title: str
    device: str | None
    metric: str | None
    point: str | None
    rule: str | None
    value: float | None
    reason: str | None
    opened_at: int
    updated_at: int
    acknowledged_at: int | None
    acknowledged_by: str | None
    due_at: int | None = None  # deadline of the next lifecycle step
    code: str | None = None  # short code a reply (SMS, handheld) carries
    suggestion: str | None = None  # "lower:blue", "lift", "condition_cleared"

    def overdue(self, now: int) -> bool:
        return self.due_at is not None and now > self.due_at and self.state not in _FINAL

    def to_json(self, now: int | None = None) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "level": self.level.label if self.level else None,
            "state": self.state,
            "title": self.title,
            "device": self.device,
            "metric": self.metric,
            "point": self.point,
            "rule": self.rule,
            "value": self.value,
            "reason": self.reason,
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
            "due_at": self.due_at,
            "overdue": self.overdue(now) if now is not None else None,
            "code": self.code,
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True, slots=True)
class TicketEvent:
    id: int
    ticket_id: int
    at: int
    kind: str
    actor: str
    level: Level | None
    value: float | None
    note: str | None
    reason: str | None
    ts: int | None
    role: str | None = None
    attachments: tuple[str, ...] = ()
    channel: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ticket_id": self.ticket_id,
            "at": self.at,
            "kind": self.kind,
            "actor": self.actor,
            "level": self.level.label if self.level else None,
            "value": self.value,
            "note": self.note,
            "reason": self.reason,
            "ts": self.ts,
            "role": self.role,
            "attachments": list(self.attachments),
            "channel": self.channel,
        }


_TICKET_COLS = (
    "id, kind, level, state, title, device, metric, point, rule, value, reason, opened_at, "
    "updated_at, acknowledged_at, acknowledged_by, due_at, code, suggestion"
)


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row[0],
        kind=row[1],
        level=Level(row[2]) if row[2] else None,
        state=row[3],
        title=row[4],
        device=row[5],
        metric=row[6],
        point=row[7],
        rule=row[8],
        value=row[9],
        reason=row[10],
        opened_at=row[11],
        updated_at=row[12],
        acknowledged_at=row[13],
        acknowledged_by=row[14],
        due_at=row[15],
        code=row[16],
        suggestion=row[17],
    )


class StationStore(Store):
    # --- tickets ----------------------------------------------------------------------

    def open_ticket_for(
        self, rule: str, device: str | None, metric: str | None, point: str | None
    ) -> OpenTicket | None:
        row = self.conn.execute(
            f"SELECT id, level FROM tickets WHERE rule = ? AND ifnull(device, '') = ? "
            f"AND ifnull(metric, '') = ? AND ifnull(point, '') = ? AND {_OPEN_CLAUSE}",
            (rule, device or "", metric or "", point or ""),
        ).fetchone()
        return OpenTicket(int(row[0]), Level(row[1]) if row[1] else None) if row else None

    def open_ticket(
        self,
        *,
        kind: TicketKind,
        level: Level | None,
        title: str,
        device: str | None,
        metric: str | None,
        point: str | None,
        rule: str | None,
        value: float | None,
        reason: str | None,
        actor: str,
        at: int,
        ts: int | None = None,
    ) -> int:
        row = self.conn.execute(
            "INSERT INTO tickets (kind, level, state, title, device, metric, point, rule, value, "
            "reason, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (
                str(kind),
                int(level) if level else None,
                str(TicketState.DISCOVERED),
                title,
                device,
                metric,
                point,
                rule,
                value,
                reason,
                at,
                at,
            ),
        ).fetchone()
        ticket_id = int(row[0])
        self.add_event(
            ticket_id, at, EventKind.OPENED, actor, level=level, value=value, reason=reason, ts=ts
        )
        return ticket_id

    def open_hazard(
        self,
        *,
        level: Level,
        title: str,
        device: str | None,
        metric: str | None,
        actor: str,
        at: int,
        ref: str,
        value: float | None = None,
        note: str | None = None,
    ) -> tuple[int, bool]:
        """Open a hazard ticket reported directly (handheld, alarm panel): rule NULL, the
        reporter as the event's actor. `ref` is the report's own id: a resent report
        returns the ticket it opened, (id, False), and opens none."""
        row = self.conn.execute(
            "SELECT ticket_id FROM hazard_refs WHERE ref = ?", (ref,)
        ).fetchone()
        if row is not None:
            return int(row[0]), False
        row = self.conn.execute(
            "INSERT INTO tickets (kind, level, state, title, device, metric, rule, value, "
            "opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?) RETURNING id",
            (
                str(TicketKind.HAZARD),
                int(level),
                str(TicketState.DISCOVERED),
                title,
                device,
                metric,
                value,
                at,
                at,
            ),
        ).fetchone()
        ticket_id = int(row[0])
        self.conn.execute(
            "INSERT INTO hazard_refs (ref, ticket_id) VALUES (?, ?)", (ref, ticket_id)
        )
        self.add_event(ticket_id, at, EventKind.OPENED, actor, level=level, value=value, note=note)
        return ticket_id, True

    def raise_ticket(
        self,
        ticket_id: int,
        level: Level,
        title: str,
        value: float | None,
        reason: str,
        actor: str,
        at: int,
        ts: int | None = None,
    ) -> None:
        self.conn.execute(
            "UPDATE tickets SET level = ?, title = ?, value = ?, reason = ?, updated_at = ? "
            "WHERE id = ?",
            (int(level), title, value, reason, at, ticket_id),
        )
        self.add_event(
            ticket_id, at, EventKind.RAISED, actor, level=level, value=value, reason=reason, ts=ts
        )

    def touch_ticket(self, ticket_id: int, at: int) -> None:
        self.conn.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (at, ticket_id))

    def add_event(
        self,
        ticket_id: int,
        at: int,
        kind: EventKind,
        actor: str,
        *,
        level: Level | None = None,
        value: float | None = None,
        note: str | None = None,
        reason: str | None = None,
        ts: int | None = None,
        role: str | None = None,
        attachments: Iterable[str] = (),
        channel: str | None = None,
    ) -> None:
        refs = list(attachments)
        self.conn.execute(
            "INSERT INTO ticket_events (ticket_id, at, kind, actor, level, value, note, reason, "
            "ts, role, attachments, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket_id,
                at,
                str(kind),
                actor,
                int(level) if level else None,
                value,
                note,
                reason,
                ts,
                role,
                json.dumps(refs, ensure_ascii=False) if refs else None,
                channel,
            ),
        )

    def acknowledge(self, ticket_id: int, by: str, note: str | None, at: int) -> Ticket:
        with self.transaction():
            ticket = self.ticket(ticket_id)
            if ticket is None:
                raise TicketNotFound(f"ticket {ticket_id} does not exist")
            if ticket.acknowledged_at is not None:
                raise TicketConflict(
                    f"ticket {ticket_id} was already acknowledged by {ticket.acknowledged_by}"
                )
            if ticket.state in _FINAL:
                raise TicketConflict(f"ticket {ticket_id} is {ticket.state}")
            self.conn.execute(
                "UPDATE tickets SET acknowledged_at = ?, acknowledged_by = ?, updated_at = ? "
                "WHERE id = ?",
                (at, by, at, ticket_id),
            )
            self.add_event(ticket_id, at, EventKind.ACKNOWLEDGED, by, note=note)
        acked = self.ticket(ticket_id)
        assert acked is not None
        return acked

    def ticket(self, ticket_id: int) -> Ticket | None:
        row = self.conn.execute(
            f"SELECT {_TICKET_COLS} FROM tickets WHERE id = ?", (ticket_id,)
        ).fetchone()
        return _ticket(row) if row else None

    def tickets(self, *, open_only: bool = False, limit: int = 1000) -> list[Ticket]:
        where = f"WHERE {_OPEN_CLAUSE}" if open_only else ""
        rows = self.conn.execute(
            f"SELECT {_TICKET_COLS} FROM tickets {where} ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_ticket(r) for r in rows]

    def count_open_tickets(self) -> int:
        return int(
            self.conn.execute(f"SELECT COUNT(*) FROM tickets WHERE {_OPEN_CLAUSE}").fetchone()[0]
        )

    def events(self, ticket_id: int) -> list[TicketEvent]:
        rows = self.conn.execute(
            "SELECT id, ticket_id, at, kind, actor, level, value, note, reason, ts, role, "
            "attachments, channel FROM ticket_events "
            "WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        ).fetchall()
        return [
            TicketEvent(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                Level(r[5]) if r[5] else None,
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                tuple(json.loads(r[11])) if r[11] else (),
                r[12],
            )
            for r in rows
        ]
