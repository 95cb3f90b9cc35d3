"""Users, sessions and the audit log in the station database.

Functions over one `Store`: the writer's for changes (called on the writer thread, each
in its own transaction), a reader's for look-ups. Session tokens are kept hashed; the
decisions (hashes, lockout) are in `gateway.auth.policy`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.auth.policy import (
    DUMMY_HASH,
    SESSION_MS,
    USER,
    Attempts,
    Role,
    after_failure,
    check_password_text,
    hash_password,
    new_token,
    token_id,
    verify_password,
    wait_ms,
)
from gateway.core.errors import GatewayError
from gateway.storage.store import Store

NAME = re.compile(r"^[\w.@-]{1,64}$")


class UserError(GatewayError):
    """A user that cannot be added or changed: bad name, unknown role, taken name."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    person: str | None  # the people-file id this user acts as on tickets, if any

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": str(self.role), "person": self.person}


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class LoginResult:
    session: Session | None
    token: str | None
    wait_ms: int  # > 0: refused because of the lockout, try again after this
    why: str  # "", "wrong", "locked"


def count_users(store: Store) -> int:
    (n,) = store.conn.execute("SELECT count(*) FROM users").fetchone()
    return int(n)


def add_user(
    store: Store,
    name: str,
    role: str,
    password: str,
    person: str | None,
    now: int,
    source: str = "cli",
) -> User:
    if not NAME.match(name):
        raise UserError(f"user name {name!r}: letters, digits, . _ @ - only, 1-64 characters")
    try:
        r = Role(role)
    except ValueError:
        raise UserError(f"role {role!r}: one of {', '.join(Role)}") from None
    check_password_text(password)
    with store.transaction():
        if store.conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise UserError(f"user {name!r} exists already")
        row = store.conn.execute(
            "INSERT INTO users (name, role, password, person, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (name, str(r), hash_password(password), person, now),
        ).fetchone()
        detail = {"role": str(r), "person": person}
        audit(store, now, None, "user.add", name, detail, source)
    return User(int(row[0]), name, r, person)


def set_password(store: Store, name: str, password: str, now: int) -> None:
    """A new password; it also unlocks the user and ends their sessions."""
    check_password_text(password)
    with store.transaction():
        row = store.conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UserError(f"no user {name!r}")
        store.conn.execute(
            "UPDATE users SET password = ?, failures = 0, last_failure = 0 WHERE id = ?",
            (hash_password(password), row[0]),
        )
        store.conn.execute("DELETE FROM sessions WHERE user_id = ?", (row[0],))
        audit(store, now, None, "user.password", name, None, "cli")


def list_users(store: Store) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT name, role, person, failures, created_at FROM users ORDER BY name"
    ).fetchall()
    return [
        {"name": n, "role": r, "person": p, "failures": f, "created_at": c}
        for n, r, p, f, c in rows
    ]


def login(store: Store, name: str, password: str, old_token: str | None, now: int) -> LoginResult:
    """Check a password against the lockout; on success a new session (the old one, if
    the browser had one, is ended: the session id changes at every login)."""
    row = store.conn.execute(
        "SELECT id, role, person, password, failures, last_failure FROM users WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        verify_password(password, DUMMY_HASH)  # the same time as a wrong password
        return LoginResult(None, None, 0, "wrong")
    uid, role, person, stored, failures, last = row
    attempts = Attempts(int(failures), int(last or 0))
    if (w := wait_ms(attempts, now, USER)) > 0:
        return LoginResult(None, None, w, "locked")
    if not verify_password(password, stored):
        a = after_failure(attempts, now)
        with store.transaction():
            store.conn.execute(
                "UPDATE users SET failures = ?, last_failure = ? WHERE id = ?",
                (a.failures, a.last_at, uid),
            )
        return LoginResult(None, None, wait_ms(a, now, USER), "wrong")
    token, csrf = new_token(), new_token()
    user = User(int(uid), name, Role(role), person)
    with store.transaction():
        store.conn.execute("UPDATE users SET failures = 0, last_failure = 0 WHERE id = ?", (uid,))
        if old_token:
            store.conn.execute("DELETE FROM sessions WHERE id = ?", (token_id(old_token),))
        store.conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        store.conn.execute(
            "INSERT INTO sessions (id, user_id, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_id(token), uid, csrf, now, now + SESSION_MS),
        )
    return LoginResult(Session(user, csrf, now + SESSION_MS), token, 0, "")


def session(store: Store, token: str, now: int) -> Session | None:
    row = store.conn.execute(
        "SELECT u.id, u.name, u.role, u.person, s.csrf, s.expires_at "
        "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.expires_at > ?",
        (token_id(token), now),
    ).fetchone()
    if row is None:
        return None
    uid, name, role, person, csrf, expires = row
    return Session(User(int(uid), name, Role(role), person), csrf, int(expires))


def logout(store: Store, token: str) -> None:
    with store.transaction():
        store.conn.execute("DELETE FROM sessions WHERE id = ?", (token_id(token),))


def audit(
    store: Store,
    now: int,
    user: User | None,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None,
    source: str,
    ok: bool = True,
) -> None:
    """One line of the audit log (inside the caller's transaction, if any)."""
    store.conn.execute(
        "INSERT INTO audit (at, user, role, action, target, detail, ok, source) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            user.name if user else None,
            str(user.role) if user else None,
            action,
            target,
            json.dumps(detail, ensure_ascii=False) if detail else None,
            int(ok),
            source,
        ),
    )


def read_audit(store: Store, limit: int) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT at, user, role, action, target, detail, ok, source FROM audit "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "at": at,
            "user": u,
            "role": r,
            "action": a,
            "target": t,
            "detail": json.loads(d) if d else None,
            "ok": bool(ok),
            "source": s,
        }
        for at, u, r, a, t, d, ok, s in rows
    ]


def muted_alarms(store: Store, limit: int = 500) -> list[tuple[str, str, str | None, int]]:
    """(ticket, who, detail JSON, at) of every alarm mute in the audit log, newest first."""
    return [
        (str(t), str(u), d, int(a))
        for t, u, d, a in store.conn.execute(
            "SELECT target, user, detail, at FROM audit WHERE action = 'alarm.mute' AND ok = 1 "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
    ]
