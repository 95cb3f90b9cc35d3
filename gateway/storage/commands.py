"""The per-device command queue (SQLite, so it survives restarts) and its state machine.

    queued ──send──► sent ──answer──► answered
       │               │──timeout, attempts left──► sent again
       │               └──timeout, no attempt left──► failed
       └──expires_at passed (queued or sent)──► expired

A device that sleeps gets its commands when it next reports: the driver asks `due()` after
the report's commit. Every transition writes one line to the audit log (who, what, answer).
Each function runs inside the caller's transaction (the writer's `transaction()`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.storage.store import Store

STATES = ("queued", "sent", "answered", "failed", "expired")


@dataclass(frozen=True, slots=True)
class QueuedCommand:
    id: int
    device: str
    name: str
    args: dict[str, str]
    state: str
    attempts: int
    max_attempts: int
    created_by: str | None
    answer: str | None


_COLUMNS = "id, device, name, args, state, attempts, max_attempts, created_by, answer"


def _row(r: tuple[Any, ...]) -> QueuedCommand:
    return QueuedCommand(
        int(r[0]), r[1], r[2], json.loads(r[3]), r[4], int(r[5]), int(r[6]), r[7], r[8]
    )


def _audit(
    store: Store, now: int, who: str | None, action: str, c: QueuedCommand, extra: dict[str, Any]
) -> None:
    detail = {"command": c.name, "args": c.args, "id": c.id, **extra}
    store.conn.execute(
        "INSERT INTO audit (at, user, role, action, target, detail, ok, source) "
        "VALUES (?, ?, NULL, ?, ?, ?, ?, 'gateway')",
        (
            now,
            who,
            action,
            c.device,
            json.dumps(detail, ensure_ascii=False),
            int(action not in ("command.failed", "command.expired")),
        ),
    )


def get(store: Store, command_id: int) -> QueuedCommand | None:
    r = store.conn.execute(
        f"SELECT {_COLUMNS} FROM device_commands WHERE id = ?", (command_id,)
    ).fetchone()
    return _row(r) if r else None


def enqueue(
    store: Store,
    now: int,
    *,
    device: str,
    name: str,
    args: dict[str, str],
    user: str | None,
    ttl_ms: int,
    timeout_ms: int,
    max_attempts: int,
    source: str,
) -> QueuedCommand:
    """Queue a command (already checked by its driver); audited as `command.queued`."""
    if ttl_ms <= 0 or timeout_ms <= 0 or max_attempts < 1:
        raise ValueError("ttl_ms and timeout_ms must be > 0, max_attempts >= 1")
    cur = store.conn.execute(
        "INSERT INTO device_commands (device, name, args, state, created_at, created_by, "
        "expires_at, timeout_ms, max_attempts) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
        (device, name, json.dumps(args), now, user, now + ttl_ms, timeout_ms, max_attempts),
    )
    c = get(store, int(cur.lastrowid or 0))
    assert c is not None
    _audit(store, now, user, "command.queued", c, {"source": source})
    return c


def due(store: Store, device: str, now: int) -> list[QueuedCommand]:
    """What to send to `device` now, oldest first: queued ones, and sent ones whose answer
    is overdue with attempts left. Expires and fails the others first."""
    expire(store, now)
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM device_commands WHERE device = ? AND (state = 'queued' OR "
        "(state = 'sent' AND sent_at + timeout_ms <= ? AND attempts < max_attempts)) "
        "ORDER BY id",
        (device, now),
    ).fetchall()
    return [_row(r) for r in rows]


def mark_sent(store: Store, command_id: int, now: int) -> None:
    c = get(store, command_id)
    if c is None or c.state not in ("queued", "sent"):
        return
    store.conn.execute(
        "UPDATE device_commands SET state = 'sent', sent_at = ?, attempts = attempts + 1 "
        "WHERE id = ?",
        (now, command_id),
    )
    _audit(store, now, None, "command.sent", c, {"attempt": c.attempts + 1})


def answered(store: Store, device: str, name: str, now: int, answer: str) -> QueuedCommand | None:
    """The device answered `name`: the oldest sent command of that name is answered."""
    r = store.conn.execute(
        f"SELECT {_COLUMNS} FROM device_commands WHERE device = ? AND name = ? "
        "AND state = 'sent' ORDER BY id LIMIT 1",
        (device, name),
    ).fetchone()
    if r is None:
        return None
    c = _row(r)
    store.conn.execute(
        "UPDATE device_commands SET state = 'answered', done_at = ?, answer = ? WHERE id = ?",
        (now, answer, c.id),
    )
    _audit(store, now, None, "command.answered", c, {"answer": answer})
    return get(store, c.id)


def failed(store: Store, command_id: int, now: int, why: str) -> None:
    c = get(store, command_id)
    if c is None or c.state not in ("queued", "sent"):
        return
    store.conn.execute(
        "UPDATE device_commands SET state = 'failed', done_at = ?, answer = ? WHERE id = ?",
        (now, why, command_id),
    )
    _audit(store, now, None, "command.failed", c, {"reason": why})


def expire(store: Store, now: int) -> list[QueuedCommand]:
    """Past their expiry: expired; sent, overdue and out of attempts: failed."""
    out = []
    rows = store.conn.execute(
        f"SELECT {_COLUMNS}, expires_at, sent_at, timeout_ms FROM device_commands "
        "WHERE state IN ('queued', 'sent') ORDER BY id"
    ).fetchall()
    for r in rows:
        c = _row(r[:9])
        expires_at, sent_at, timeout_ms = r[9], r[10], r[11]
        if expires_at <= now:
            state, why = "expired", "未在有效期内送达或应答"
        elif c.state == "sent" and sent_at + timeout_ms <= now and c.attempts >= c.max_attempts:
            state, why = "failed", f"{c.attempts} 次发送均未应答"
        else:
            continue
        store.conn.execute(
            "UPDATE device_commands SET state = ?, done_at = ?, answer = ? WHERE id = ?",
            (state, now, why, c.id),
        )
        _audit(store, now, None, f"command.{state}", c, {"reason": why})
        out.append(c)
    return out


def listing(store: Store, device: str, limit: int = 50) -> list[QueuedCommand]:
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM device_commands WHERE device = ? ORDER BY id DESC LIMIT ?",
        (device, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def is_open(store: Store, device: str, name: str) -> bool:
    """Whether a `name` command for `device` is queued or sent (not yet done)."""
    return (
        store.conn.execute(
            "SELECT 1 FROM device_commands WHERE device = ? AND name = ? "
            "AND state IN ('queued', 'sent') LIMIT 1",
            (device, name),
        ).fetchone()
        is not None
    )
