"""The HTTP API against its own OpenAPI schema (schemathesis), on a real gateway process.

What tests/integration/test_access.py already proves is not repeated here: the setup token,
cookie flags, CSRF on one route, the session id changing at login, the three free tries
and the backoff. Here every operation comes from `/openapi.json`, not from a hand list.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case

from gateway.auth.policy import USER
from gateway.http.auth import PUBLIC, SAFE
from tests.conftest import Gateway, add_user
from tests.integration.test_end_to_end import wait_for

pytestmark = pytest.mark.integration

CASES = int(os.environ.get("STATIONGW_FUZZ_CASES", "500"))  # per operation
ENDLESS = {("GET", "/api/events")}  # a server-sent event stream never ends by itself
# logging out ends the session the fuzzer sends with (test_access.py covers logout)
ENDS_SESSION = {("POST", "/api/logout")}


def operations(schema: Any) -> list[Any]:
    return [r.ok() for r in schema.get_all_operations()]


def load(gateway: Gateway) -> Any:
    raw = httpx.get(f"{gateway.url}/openapi.json").json()
    return schemathesis.openapi.from_dict(raw)


def session_of(client: httpx.Client) -> requests.Session:
    """A requests session (what schemathesis calls with) holding an httpx login."""
    s = requests.Session()
    s.cookies.update(dict(client.cookies))
    s.headers["X-CSRF-Token"] = client.headers["X-CSRF-Token"]
    return s


def fill(path: str) -> str:
    """A path template with plausible parameters (a ticket id, a rules file name)."""
    return re.sub(r"\{[^}]*name[^}]*\}", "rules.toml", re.sub(r"\{[^}]*id[^}]*\}", "1", path))


def state_changing(schema: Any) -> list[Any]:
    return [
        op
        for op in operations(schema)
        if op.method.upper() not in SAFE
        and op.path.startswith("/api/")
        and op.path not in PUBLIC
        and (op.method.upper(), op.path) not in ENDS_SESSION
    ]


def run_cases(strategy: Any, n: int, check: Callable[..., None]) -> None:
    """`check(case, ...)` on up to `n` examples of `strategy` (a tuple of strategies for
    its arguments): generation only, no shrinking, no example database."""
    given(*strategy)(
        settings(
            max_examples=n,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(check)
    )()


def test_every_api_operation_needs_a_session_and_viewers_change_nothing(
    gateway: Gateway,
) -> None:
    gateway.start()
    schema = load(gateway)
    ops = operations(schema)
    api_ops = [op for op in ops if op.path.startswith("/api/")]
    assert len(api_ops) >= 30, [op.label for op in ops]  # the schema lists the whole API
    # 1. unauthenticated: 401 on everything under /api but the documented public four
    public = set()
    for op in api_ops:
        r = httpx.request(op.method.upper(), gateway.url + fill(op.path), json={})
        if op.path in PUBLIC:
            public.add(op.path)
            assert r.status_code != 401, op.label
        else:
            assert r.status_code == 401, (op.label, r.status_code, r.text)
    assert public == set(PUBLIC)
    print(
        f"\n401 without a session on {len(api_ops) - len(public)} of {len(api_ops)} /api operations"
    )
    # 2. every state-changing operation: a viewer is refused (403 role) with any valid
    # request schemathesis makes; anybody without the CSRF token is refused (403 csrf)
    changing = state_changing(schema)
    assert len(changing) >= 11, [op.label for op in changing]
    with closing(gateway.api("viewer")) as viewer, closing(gateway.api("leader")) as leader:
        as_viewer = session_of(viewer)
        no_csrf = session_of(leader)
        del no_csrf.headers["X-CSRF-Token"]
        seen: dict[str, Counter[int]] = {}
        for op in changing:
            codes: Counter[int] = Counter()

            def probe(case: Case, codes: Counter[int]) -> None:
                r = case.call(base_url=gateway.url, session=as_viewer, timeout=30)
                # FastAPI validates the body before the route checks the role
                assert r.status_code in (403, 422), (case.as_curl_command(), r.text)
                if r.status_code == 403:
                    assert r.json()["detail"]["why"] == "role", r.text
                codes[r.status_code] += 1
                r = case.call(base_url=gateway.url, session=no_csrf, timeout=30)
                assert r.status_code == 403 and r.json()["detail"]["why"] == "csrf", r.text

            run_cases((op.as_strategy(), st.just(codes)), 15, probe)
            assert codes[403] > 0, (op.label, codes)  # a valid request was refused
            seen[op.label] = codes
    print(f"viewer refused on {len(seen)} state-changing operations: {sorted(seen)}")


def test_wrong_passwords_throttle_the_name_never_lock_it_and_no_secret_reaches_the_log(
    gateway: Gateway,
) -> None:
    """Thirty wrong passwords for one name from anywhere make the next try wait the
    per-name cap (USER.cap_ms), never a lock (the old 15-minute lock kept the
    duty officer out during a storm; the backoff before it is in test_access.py and
    tests/unit/auth/test_auth.py: here the earlier ones are put in the database). Then: no
    password, session token or CSRF token in the log; the one-time setup token only on
    its single console line."""
    gateway.start()
    token = wait_for(
        lambda: (m := re.search(r"setup token ([\w-]+)", gateway.log.read_text())) and m[1],
        what="setup token on the console",
    )
    secrets_sent: list[str] = []
    admin_pw = "root's long password"
    with httpx.Client(base_url=gateway.url) as c:
        bad = c.post("/api/setup", json={"name": "root", "password": admin_pw, "token": "x" * 43})
        assert bad.status_code == 403
        r = c.post("/api/setup", json={"name": "root", "password": admin_pw, "token": token})
        assert r.status_code == 201
        secrets_sent += [r.json()["csrf"], c.cookies["stationgw_session"], admin_pw]
    zhao_pw = add_user(gateway.db, "zhao", "duty_officer")
    secrets_sent.append(zhao_pw)

    # other loopback source addresses, so that the per-address backoff stays out of the way
    def client(n: int) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{n}")
        return httpx.Client(base_url=gateway.url, transport=transport)

    with closing(client(2)) as c:
        r = c.post("/api/login", json={"name": "zhao", "password": zhao_pw})
        assert r.status_code == 200
        secrets_sent += [r.json()["csrf"], c.cookies["stationgw_session"]]
    recently = int(time.time() * 1000) - USER.cap_ms - 5_000  # the 29th's wait is over
    with closing(sqlite3.connect(gateway.db)) as db, db:
        db.execute(
            "UPDATE users SET failures = 29, last_failure = ? WHERE name = 'zhao'", (recently,)
        )
    wrong = "zhao's thirtieth wrong guess"
    secrets_sent.append(wrong)
    with closing(client(3)) as c:
        assert c.post("/api/login", json={"name": "zhao", "password": wrong}).status_code == 401
    with closing(client(4)) as c:
        r = c.post("/api/login", json={"name": "zhao", "password": zhao_pw})
        assert r.status_code == 429, r.text  # even the right password, from elsewhere
        first_wait = int(r.headers["retry-after"])
        assert 0 < first_wait <= USER.cap_ms // 1000  # a wait, not a 15-minute lock
        assert r.json()["detail"]["why"] == "locked"
    for n in range(5, 8):  # the wrong tries during the wait do not prolong or reveal it
        with closing(client(n)) as c:
            r = c.post("/api/login", json={"name": "zhao", "password": f"guess {n} wrong"})
            assert r.status_code == 429
            assert int(r.headers["retry-after"]) <= first_wait
    time.sleep(first_wait + 0.5)  # the wait itself (not a timed assert): then he is in
    with closing(client(8)) as c:
        r = c.post("/api/login", json={"name": "zhao", "password": zhao_pw})
        assert r.status_code == 200, r.text
        secrets_sent += [r.json()["csrf"], c.cookies["stationgw_session"]]
    time.sleep(1)  # let the log handlers flush lines already written (not a timed assert)
    text = gateway.log.read_text()
    with closing(sqlite3.connect(gateway.db)) as db:
        audit = "\n".join(repr(row) for row in db.execute("SELECT * FROM audit"))
    logins = audit.count("'login'")
    assert logins >= 6 and "'setup'" in audit, audit  # the attempts are in the audit log
    for secret in secrets_sent:
        assert secret not in text, f"a secret reached the gateway's log: {secret[:4]}…"
        assert secret not in audit, f"a secret reached the audit log: {secret[:4]}…"
    # the setup token is printed once, by design: it is how the operator gets it; it is
    # dead once the first admin exists (test_access.py)
    assert text.count(token) == 1
    assert re.search(rf"one-time setup token {re.escape(token)}", text)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_schemathesis_finds_no_server_errors(gateway: Gateway) -> None:
    """CASES generated requests per operation, each sent with a session of a random role
    (admin, leader, duty officer, technician, viewer) and its CSRF token."""
    gateway.start()
    schema = load(gateway)
    roles = ["admin", "leader", "duty_officer", "technician", "viewer"]
    clients = [gateway.api(role) for role in roles]
    sessions = [session_of(c) for c in clients]
    ops = [
        op
        for op in operations(schema)
        if (op.method.upper(), op.path) not in ENDLESS | ENDS_SESSION
    ]
    started = time.monotonic()
    tally: dict[str, Counter[int]] = {}
    took: dict[str, float] = {}
    errors: list[str] = []
    try:
        for op in ops:
            codes: Counter[int] = Counter()

            def fuzz(case: Case, who: requests.Session, codes: Counter[int]) -> None:
                r = case.call(base_url=gateway.url, session=who, timeout=30)
                codes[r.status_code] += 1
                if r.status_code >= 500:
                    errors.append(f"{r.status_code} {case.as_curl_command()}\n{r.text[:300]}")

            run_cases((op.as_strategy(), st.sampled_from(sessions), st.just(codes)), CASES, fuzz)
            tally[op.label] = codes
            took[op.label] = time.monotonic() - started - sum(took.values())
    finally:
        for c in clients:
            c.close()
    elapsed = time.monotonic() - started
    total = sum(sum(c.values()) for c in tally.values())
    print(f"\n{total} requests over {len(tally)} operations in {elapsed:.0f} s")
    for label, codes in tally.items():
        n, t = sum(codes.values()), took[label]
        print(f"  {label}: {n} in {t:.1f} s {dict(sorted(codes.items()))}")
    assert not errors, "\n".join(errors[:10])
    assert gateway.proc is not None and gateway.proc.poll() is None  # still running
    # operations without inputs (no parameters, no body) have only a few distinct
    # requests: hypothesis stops there; the others get CASES each
    few = {label: sum(c.values()) for label, c in tally.items() if sum(c.values()) < CASES}
    print(f"fewer than {CASES} (no inputs to vary): {few}")
