"""Rows of the warning loop as the API and the dispatcher read them: calls, deliveries
(the outbox, with its retry bookkeeping), handovers and the escalation state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.core.model import Level
from gateway.storage.store import Store
from gateway.tickets.calls import WarnState


@dataclass(frozen=True, slots=True)
class CallRow:
    id: int
    ticket_id: int
    round: int
    step: int
    grid: str
    person: str
    name: str
    phone: str | None
    why: str
    called_at: int
    due_at: int
    outcome: str
    acked_at: int | None
    acked_via: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    ticket_id: int
    call_id: int | None
    channel: str
    target: str
    body: dict[str, Any]
    status: str
    attempts: int
    next_at: int
    last_error: str | None
    created_at: int
    updated_at: int

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _delivery(r: Any) -> DeliveryRow:
    return DeliveryRow(
        r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8], r[9], r[10], r[11]
    )


_CALL_COLS = (
    "id, ticket_id, round, step, grid, person, name, phone, why, called_at, due_at, outcome, "
    "acked_at, acked_via"
)
_DELIVERY_COLS = (
    "id, ticket_id, call_id, channel, target, body, status, attempts, next_at, last_error, "
    "created_at, updated_at"
)


def read_calls(store: Store, ticket_id: int) -> list[CallRow]:
    rows = store.conn.execute(
        f"SELECT {_CALL_COLS} FROM calls WHERE ticket_id = ? ORDER BY id", (ticket_id,)
    ).fetchall()
    return [CallRow(*r) for r in rows]


def read_deliveries(
    store: Store, *, ticket_id: int | None = None, status: str | None = None, limit: int = 500
) -> list[DeliveryRow]:
    where: list[str] = []
    args: list[object] = []
    if ticket_id is not None:
        where.append("ticket_id = ?")
        args.append(ticket_id)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = store.conn.execute(
        f"SELECT {_DELIVERY_COLS} FROM deliveries {clause} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [_delivery(r) for r in rows]


def read_handovers(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT id, at, from_person, to_person, note, open_items FROM handovers "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"id": i, "at": at, "from": f, "to": t, "note": n, "open": json.loads(items)}
        for i, at, f, t, n, items in rows
    ]


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: int
    ticket_id: int
    call_id: int | None
    delivery_id: int | None
    channel: str
    person: str | None
    target: str
    started_at: int
    ended_at: int
    outcome: str
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


_ATTEMPT_COLS = (
    "id, ticket_id, call_id, delivery_id, channel, person, target, started_at, ended_at, "
    "outcome, detail"
)


def read_attempts(store: Store, ticket_id: int) -> list[AttemptRow]:
    rows = store.conn.execute(
        f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE ticket_id = ? ORDER BY id", (ticket_id,)
    ).fetchall()
    return [AttemptRow(*r) for r in rows]


def read_warn_state(store: Store, ticket_id: int) -> WarnState | None:
    r = store.conn.execute(
        "SELECT level, round, step, due_at, acked_at, acked_by, acked_via, exhausted "
        "FROM warning_state WHERE ticket_id = ?",
        (ticket_id,),
    ).fetchone()
    return WarnState(Level(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])) if r else None


def due_deliveries(store: Store, now: int, skip: set[int], limit: int = 200) -> list[DeliveryRow]:
    rows = store.conn.execute(
        f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE status = 'pending' AND next_at <= ? "
        "ORDER BY next_at, id LIMIT ?",
        (now, limit + len(skip)),
    ).fetchall()
    out = [_delivery(r) for r in rows]
    return [d for d in out if d.id not in skip][:limit]


def delivered(
    store: Store,
    delivery_id: int,
    error: str | None,
    now: int,
    max_attempts: int,
    *,
    outcome: str | None = None,
    started_at: int | None = None,
) -> DeliveryRow | None:
    """Record one attempt: sent, or retried (after the delivery's own spacing — a voice
    redial — or the backoff), or failed after the last; a delivery cancelled while it was
    in flight stays cancelled. The attempt itself is a row of `attempts`."""
    with store.transaction():
        r = store.conn.execute(
            "SELECT attempts, max_attempts, retry_ms, status, ticket_id, call_id, channel, "
            "target, body FROM deliveries WHERE id = ?",
            (delivery_id,),
        ).fetchone()
        if r is None:
            return None
        attempts = int(r[0]) + 1
        limit = int(r[1]) if r[1] is not None else max_attempts
        if r[3] == "cancelled":
            status, next_at = "cancelled", now
        elif error is None:
            status, next_at = "sent", now
        elif attempts >= limit:
            status, next_at = "failed", now
        else:
            status, next_at = "pending", now + (int(r[2]) if r[2] else backoff_ms(attempts))
        store.conn.execute(
            "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ?, "
            "updated_at = ? WHERE id = ?",
            (status, attempts, next_at, error, now, delivery_id),
        )
        person = json.loads(r[8]).get("person")
        store.conn.execute(
            "INSERT INTO attempts (ticket_id, call_id, delivery_id, channel, person, target, "
            "started_at, ended_at, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r[4],
                r[5],
                delivery_id,
                r[6],
                person,
                r[7],
                started_at if started_at is not None else now,
                now,
                outcome or ("sent" if error is None else "failed"),
                error,
            ),
        )
    r = store.conn.execute(
        f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    return _delivery(r) if r else None


def backoff_ms(attempts: int) -> int:
    """1 s, 2 s, 4 s … capped at 5 minutes."""
    return int(min(1000 * 2 ** (attempts - 1), 300_000))
