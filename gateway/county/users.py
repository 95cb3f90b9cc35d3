"""The county page's users, sessions and audit log in PostgreSQL (migration 2).

The same roles, password hashing (scrypt), session lifetime and login throttle as the
station's (`gateway.auth.policy`); only the store differs. Functions over one psycopg
connection, each change in its own transaction; `now` (UTC ms) is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

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
from gateway.auth.users import NAME, LoginResult, Session, User, UserError

__all__ = [
    "LoginResult",
    "Session",
    "User",
    "UserError",
    "add_user",
    "audit",
    "count_users",
    "login",
    "logout",
    "session",
]

Conn = Connection[Any]


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    role: str
    person: str | None
    password: str
    failures: int
    last_failure: int


def count_users(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM county_users").fetchone()
    return int(row[0]) if row else 0


def add_user(
    conn: Conn,
    name: str,
    role: str,
    password: str,
    person: str | None,
    now: int,
    source: str = "cli",
) -> User:
    """`stationgw county users add NAME --role ROLE [--person ID]` (the password asked on
    the console); UserError for a bad name, role or a name taken."""
    if not NAME.match(name):
        raise UserError(f"user name {name!r}: letters, digits, . _ @ - only, 1-64 characters")
    try:
        r = Role(role)
    except ValueError:
        raise UserError(f"role {role!r}: one of {', '.join(Role)}") from None
    check_password_text(password)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM county_users WHERE name = %s", (name,)).fetchone():
            raise UserError(f"user {name!r} exists already")
        row = conn.execute(
            "INSERT INTO county_users (name, role, password, person) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (name, str(r), hash_password(password), person),
        ).fetchone()
        assert row is not None
        audit(conn, None, "user.add", name, {"role": str(r), "person": person}, source)
    return User(int(row[0]), name, r, person)


def add_user_cli(conninfo: str, name: str, role: str, password: str, person: str | None) -> User:
    """What `stationgw county users add` calls (a connection of its own)."""
    import time

    import psycopg

    with psycopg.connect(conninfo) as conn:
        return add_user(conn, name, role, password, person, time.time_ns() // 1_000_000)


def login(conn: Conn, name: str, password: str, old_token: str | None, now: int) -> LoginResult:
    row = conn.execute(
        "SELECT id, role, person, password, failures, last_failure FROM county_users "
        "WHERE name = %s",
        (name,),
    ).fetchone()
    if row is None:
        verify_password(password, DUMMY_HASH)  # the same time as a wrong password
        conn.rollback()
        return LoginResult(None, None, 0, "wrong")
    u = _Row(int(row[0]), str(row[1]), row[2], str(row[3]), int(row[4]), int(row[5] or 0))
    attempts = Attempts(u.failures, u.last_failure)
    if (w := wait_ms(attempts, now, USER)) > 0:
        conn.rollback()
        return LoginResult(None, None, w, "locked")
    if not verify_password(password, u.password):
        a = after_failure(attempts, now)
        with conn.transaction():
            conn.execute(
                "UPDATE county_users SET failures = %s, last_failure = %s WHERE id = %s",
                (a.failures, a.last_at, u.id),
            )
        return LoginResult(None, None, wait_ms(a, now, USER), "wrong")
    token, csrf = new_token(), new_token()
    user = User(u.id, name, Role(u.role), u.person)
    with conn.transaction():
        conn.execute(
            "UPDATE county_users SET failures = 0, last_failure = 0 WHERE id = %s", (u.id,)
        )
        if old_token:
            conn.execute("DELETE FROM county_sessions WHERE id = %s", (token_id(old_token),))
        conn.execute("DELETE FROM county_sessions WHERE expires_at <= %s", (now,))
        conn.execute(
            "INSERT INTO county_sessions (id, user_id, csrf, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (token_id(token), u.id, csrf, now, now + SESSION_MS),
        )
    return LoginResult(Session(user, csrf, now + SESSION_MS), token, 0, "")


def session(conn: Conn, token: str, now: int) -> Session | None:
    row = conn.execute(
        "SELECT u.id, u.name, u.role, u.person, s.csrf, s.expires_at FROM county_sessions s "
        "JOIN county_users u ON u.id = s.user_id WHERE s.id = %s AND s.expires_at > %s",
        (token_id(token), now),
    ).fetchone()
    conn.rollback()  # end the read's transaction: the connection goes back idle
    if row is None:
        return None
    uid, name, role, person, csrf, expires = row
    return Session(User(int(uid), str(name), Role(role), person), str(csrf), int(expires))


def logout(conn: Conn, token: str) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM county_sessions WHERE id = %s", (token_id(token),))


def audit(
    conn: Conn,
    user: User | None,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None,
    source: str,
    ok: bool = True,
) -> None:
    """One line of the county's audit log (inside the caller's transaction, if any)."""
    conn.execute(
        'INSERT INTO county_audit ("user", role, action, target, detail, ok, source) '
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            user.name if user else None,
            str(user.role) if user else None,
            action,
            target,
            Jsonb(detail) if detail else None,
            ok,
            source,
        ),
    )


def read_audit(conn: Conn, limit: int) -> list[dict[str, Any]]:
    """The county's audit log, newest first."""
    rows = conn.execute(
        'SELECT at, "user", role, action, target, detail, ok, source FROM county_audit '
        "ORDER BY id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [
        {
            "at": int(at.timestamp() * 1000),
            "user": u,
            "role": r,
            "action": a,
            "target": t,
            "detail": d,
            "ok": bool(ok),
            "source": src,
        }
        for at, u, r, a, t, d, ok, src in rows
    ]


def cmd_users_add(
    conninfo: str,
    name: str,
    role: str,
    person: str | None,
    people: set[str],
    password: str | None = None,
) -> int:
    """`stationgw county users add NAME --role ROLE [--person ID] -c county.toml`: the
    password asked twice on the console (or given, e.g. from --password-stdin); `people`
    the ids of county.toml's [[people]] (`--person` must be one of them)."""
    import getpass

    from gateway.auth.policy import PasswordTooWeak
    from gateway.core.errors import GatewayError

    if person is not None and person not in people:
        raise GatewayError(f"--person {person}: not in county.toml's [[people]]")
    if password is None:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise GatewayError("the two passwords differ")
    try:
        u = add_user_cli(conninfo, name, role, password, person)
    except PasswordTooWeak as e:
        raise GatewayError(str(e)) from None
    print(f"user {u.name} added, role {u.role}" + (f", acts as {u.person}" if u.person else ""))
    return 0
