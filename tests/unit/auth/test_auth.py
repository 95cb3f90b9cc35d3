"""The access core: password hashes, the login throttle (never a lock), role permissions,
and users/sessions/audit in a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.policy import (
    ADDRESS,
    FORGET_MS,
    PAIR,
    USER,
    Attempts,
    PasswordTooWeak,
    Role,
    Throttle,
    after_failure,
    hash_password,
    permissions,
    verify_password,
    wait_ms,
)
from gateway.auth.users import UserError, add_user, login, read_audit, session
from gateway.config.station import load_config
from gateway.tickets.desk import policy_of
from gateway.tickets.store import StationStore

REPO = Path(__file__).resolve().parents[3]


def test_hash_is_salted_scrypt_and_verifies() -> None:
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1.startswith("scrypt$16384$8$1$") and h1 != h2  # a new salt each time
    assert verify_password("correct horse", h1) and verify_password("correct horse", h2)
    assert not verify_password("correct hors", h1)
    assert not verify_password("x", "md5$abc") and not verify_password("x", "garbage")


@pytest.mark.parametrize("throttle", [PAIR, USER, ADDRESS], ids=["pair", "user", "address"])
def test_waits_grow_to_a_cap_and_never_lock(throttle: Throttle) -> None:
    """Issue 21: no number of wrong passwords locks a name or an address; the wait grows
    1 s, 2 s, 4 s ... after the free tries and stops at the cap."""
    a, now = Attempts(), 1_000_000
    delays = []
    for _ in range(1000):
        assert wait_ms(a, now, throttle) == 0
        a = after_failure(a, now)
        delays.append(wait_ms(a, now, throttle))
        now += delays[-1]
    free = throttle.free
    assert delays[: free - 1] == [0] * (free - 1)
    assert delays[free - 1 : free + 2] == [1000, 2000, 4000]
    assert max(delays) == throttle.cap_ms == delays[-1]  # the 1,000th waits the cap, no more
    assert (PAIR.cap_ms, USER.cap_ms, ADDRESS.cap_ms) == (60_000, 15_000, 15_000)
    # a quarter of an hour without a wrong try: the count starts again
    assert wait_ms(a, now + FORGET_MS) == 0
    assert after_failure(a, now + FORGET_MS).failures == 1


def test_permissions_follow_the_station_ticket_policy() -> None:
    policy = policy_of(load_config(REPO / "gateway" / "devtools" / "demo_station.toml"))
    viewer = permissions(policy, Role.VIEWER)
    assert viewer == {
        "ack": False,
        "report": False,
        "handover": False,
        "rules": False,
        "audit": False,
        "steps": {},
    }
    leader = permissions(policy, Role.LEADER)["steps"]
    assert leader == {
        "hazard": ["confirm", "control", "rectify", "close", "dismiss"],
        "device_fault": ["close"],
        "warning": ["lift", "lower"],
    }
    tech = permissions(policy, Role.TECHNICIAN)
    assert tech["rules"] and tech["steps"]["device_fault"] == [
        "confirm",
        "rectify",
        "close",
        "dismiss",
    ]  # type: ignore[index]
    assert (
        permissions(policy, Role.ADMIN)["steps"] == {} and permissions(policy, Role.ADMIN)["audit"]
    )


def test_users_sessions_rotate_and_lock(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    try:
        with pytest.raises(PasswordTooWeak):
            add_user(store, "zhao", "duty_officer", "short", None, 0)
        with pytest.raises(UserError, match="role 'boss'"):
            add_user(store, "zhao", "boss", "long enough pw", None, 0)
        add_user(store, "zhao", "duty_officer", "long enough pw", "zhao-zb", 0)
        with pytest.raises(UserError, match="exists already"):
            add_user(store, "zhao", "viewer", "long enough pw", None, 0)
        first = login(store, "zhao", "long enough pw", None, 1000)
        assert first.session is not None and first.token is not None
        assert first.session.user.person == "zhao-zb"
        assert session(store, first.token, 1001) is not None
        # a new login from the same browser ends the old session: a new id
        second = login(store, "zhao", "long enough pw", first.token, 2000)
        assert second.token is not None and second.token != first.token
        assert session(store, first.token, 2001) is None
        assert session(store, second.token, 2001) is not None
        # the database keeps only a hash of the token
        stored = store.conn.execute("SELECT id FROM sessions").fetchall()
        assert stored and all(second.token not in row[0] for row in stored)
        # many wrong: the right password waits too, at most the per-name cap, then works
        now = 10_000
        for _ in range(100):
            r = login(store, "zhao", "wrong password", None, now)
            assert r.session is None and r.why == "wrong"
            now += r.wait_ms
        r = login(store, "zhao", "wrong password", None, now)
        held = login(store, "zhao", "long enough pw", None, now)
        assert (held.session, held.why) == (None, "locked") and held.wait_ms == USER.cap_ms
        assert login(store, "zhao", "long enough pw", None, now + USER.cap_ms).session
        assert login(store, "nobody", "x", None, now).why == "wrong"
        assert [a["action"] for a in read_audit(store, 10)] == ["user.add"]
    finally:
        store.close()
