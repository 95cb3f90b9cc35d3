"""Who may use the page and the API: roles, password hashing, the login throttle.

Pure: no IO; `now` (UTC ms) is an argument. Passwords are hashed with scrypt
(hashlib, RFC 7914) and a random salt; the stored text names its parameters so they
can be raised later without breaking old hashes.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gateway.tickets.lifecycle import Policy, Step


class Role(enum.StrEnum):
    VIEWER = "viewer"  # the big screen: reads everything, changes nothing
    DUTY_OFFICER = "duty_officer"
    TECHNICIAN = "technician"
    LEADER = "leader"
    ADMIN = "admin"  # users and the audit log; takes no ticket steps (separation of duties)


# Roles of people who may act on tickets; the steps each may take come from the
# station's `[tickets]` policy (gateway.tickets.lifecycle.Policy), not from here.
TICKET_ROLES = frozenset({Role.DUTY_OFFICER, Role.TECHNICIAN, Role.LEADER})
ACK_ROLES = TICKET_ROLES  # acknowledge a call (叫应回应) from the page
REPORT_ROLES = TICKET_ROLES  # enter a hazard by hand
HANDOVER_ROLES = frozenset({Role.DUTY_OFFICER, Role.LEADER})
RULES_ROLES = frozenset({Role.TECHNICIAN, Role.ADMIN})  # reload, upload, replay rules
AUDIT_ROLES = frozenset({Role.ADMIN, Role.LEADER})

SESSION_COOKIE = "stationgw_session"
SESSION_MS = 12 * 3600 * 1000  # one long shift; then log in again
MIN_PASSWORD = 10

# scrypt: n=2**14, r=8, p=1 needs 16 MiB and ~50 ms here: fine for a login, slow for guessing
_N, _R, _P = 2**14, 8, 1


class PasswordTooWeak(ValueError):
    """A password refused before hashing (too short)."""


def check_password_text(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordTooWeak(f"a password needs at least {MIN_PASSWORD} characters")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(want),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


# A hash to verify against when the user does not exist, so that an unknown name costs
# the same time as a wrong password (no telling which names exist).
DUMMY_HASH = hash_password("not a password", salt=b"\0" * 16)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_id(token: str) -> str:
    """What the database keeps of a session token: its hash, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- login throttling: growing waits, never a lock-out ------------------------------
#
# A wrong password makes the next try from the same place wait: 1 s, 2 s, 4 s ... up to a
# cap, after some free tries. Three counters, each with its own cap (README, "Security"):
# one name from one address (a guesser at one machine), one name from anywhere (persisted
# with the user: guessing from many addresses), one address for any name (spraying many
# names). No count ever locks: on a shared duty-room PC or behind a proxy, someone
# else's wrong passwords cost the duty officer at most ADDRESS.cap_ms, and a guesser
# hammering the duty officer's own name costs him at most USER.cap_ms from his own
# screen. Counts are forgotten after FORGET_MS without a wrong try.


@dataclass(frozen=True, slots=True)
class Throttle:
    free: int  # wrong tries before any wait
    cap_ms: int  # the longest wait


PAIR = Throttle(free=3, cap_ms=60_000)  # one name from one address
USER = Throttle(free=10, cap_ms=15_000)  # one name from any address
ADDRESS = Throttle(free=10, cap_ms=15_000)  # any name from one address
FORGET_MS = 15 * 60 * 1000  # a count starts again after this long without a wrong try
FREE_TRIES = PAIR.free  # (the name older callers used)


@dataclass(frozen=True, slots=True)
class Attempts:
    """Wrong passwords in a row, and when the last one was."""

    failures: int = 0
    last_at: int = 0


def wait_ms(a: Attempts, now: int, t: Throttle = PAIR) -> int:
    """How long before the next try is allowed (0: now)."""
    if a.failures < t.free or now - a.last_at >= FORGET_MS:
        return 0
    delay = min(t.cap_ms, 1000 << min(a.failures - t.free, 30))
    return max(0, a.last_at + delay - now)


def after_failure(a: Attempts, now: int) -> Attempts:
    failures = 0 if now - a.last_at >= FORGET_MS else a.failures
    return Attempts(failures + 1, now)


# --- what a role may do on the page ------------------------------------------------


def ticket_steps(policy: Policy, role: str) -> dict[str, list[str]]:
    """The steps `role` may take per ticket kind, from the station's ticket policy."""
    out: dict[str, list[str]] = {}
    for kind in ("hazard", "device_fault", "warning"):
        steps = [str(s) for s in Step if role in policy.allowed(kind, s)]
        if kind == "warning":  # warnings are lifted or lowered, nothing else
            steps = [s for s in steps if s == "lift"]
            if "lift" in steps:
                steps.append("lower")
        else:
            steps = [s for s in steps if s != "lift"]
        out[kind] = steps
    return out


def permissions(policy: Policy, role: Role) -> dict[str, object]:
    return {
        "ack": role in ACK_ROLES,
        "report": role in REPORT_ROLES,
        "handover": role in HANDOVER_ROLES,
        "rules": role in RULES_ROLES,
        "audit": role in AUDIT_ROLES,
        "steps": ticket_steps(policy, role) if role in TICKET_ROLES else {},
    }
