"""Access to a real gateway process: the first admin from the one-time setup token on
its console, 401 without a session, CSRF, cookie flags, session rotation, backoff."""

from __future__ import annotations

import re
import threading
import time
from contextlib import closing

import httpx
import pytest

from tests.conftest import Gateway, add_user
from tests.integration.test_end_to_end import wait_for

pytestmark = pytest.mark.integration


def test_first_admin_from_the_setup_token_then_sessions_and_csrf(gateway: Gateway) -> None:
    gateway.start()
    url = gateway.url
    token = wait_for(
        lambda: (m := re.search(r"setup token ([\w-]+)", gateway.log.read_text())) and m[1],
        what="setup token on the console",
    )
    assert "no default password" not in gateway.log.read_text()
    assert httpx.get(f"{url}/api/session").json() == {"user": None, "setup": True}
    assert httpx.get(f"{url}/api/tickets").status_code == 401
    assert httpx.get(f"{url}/api/events").status_code == 401
    assert httpx.get(f"{url}/api/health").status_code == 200  # public: probes
    first = {"name": "root", "password": "a long password", "token": "wrong"}
    assert httpx.post(f"{url}/api/setup", json=first).status_code == 403
    weak = httpx.post(f"{url}/api/setup", json={**first, "token": token, "password": "short"})
    assert weak.status_code == 422 and "10 characters" in weak.text
    with httpx.Client(base_url=url) as c:
        r = c.post("/api/setup", json={**first, "token": token})
        assert r.status_code == 201 and r.json()["user"]["role"] == "admin"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP on loopback; Secure over TLS
        csrf = r.json()["csrf"]
        assert c.get("/api/audit").status_code == 200
        # a state change without the CSRF token, or with a wrong one, is refused
        assert c.post("/api/rules/reload").status_code == 403
        bad = c.post("/api/rules/reload", headers={"X-CSRF-Token": "x" * 43})
        assert bad.status_code == 403 and bad.json()["detail"]["why"] == "csrf"
        assert c.post("/api/rules/reload", headers={"X-CSRF-Token": csrf}).status_code == 200
        # the token is one time only
        again = httpx.post(f"{url}/api/setup", json={**first, "name": "root2", "token": token})
        assert again.status_code == 403
        # logging in again rotates the session id; the old cookie is dead
        old = c.cookies["stationgw_session"]
        r = c.post("/api/login", json={"name": "root", "password": "a long password"})
        assert r.status_code == 200 and c.cookies["stationgw_session"] != old
        stale = httpx.get(f"{url}/api/tickets", cookies={"stationgw_session": old})
        assert stale.status_code == 401
        assert c.get("/api/tickets").status_code == 200
        csrf = r.json()["csrf"]
        # an open event stream ends after its session does (checked every 15 s)
        opened, ended = threading.Event(), threading.Event()
        jar = httpx.Cookies(c.cookies)

        def listen() -> None:
            with (
                httpx.Client(cookies=jar, timeout=httpx.Timeout(5, read=60)) as s,
                s.stream("GET", f"{url}/api/events") as stream,
            ):
                if stream.status_code == 200:
                    opened.set()
                    stream.read()  # until the server ends the stream
            ended.set()

        threading.Thread(target=listen, daemon=True).start()
        assert opened.wait(10), "the event stream did not open"
        assert c.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert c.get("/api/tickets").status_code == 401
        assert ended.wait(60), "the event stream outlived its session"
    with closing(gateway.api("admin")) as admin:
        lines = admin.get("/api/audit", params={"limit": 50}).json()
    actions = [(a["user"], a["action"], a["ok"]) for a in lines]
    assert ("root", "setup", True) in actions and ("root", "logout", True) in actions
    assert (None, "setup", False) in actions  # the wrong token


def test_wrong_passwords_back_off_and_are_audited(gateway: Gateway) -> None:
    gateway.start()
    password = add_user(gateway.db, "zhao", "duty_officer")
    url = gateway.url
    codes = [
        httpx.post(f"{url}/api/login", json={"name": "zhao", "password": "guess"}).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [401, 401, 401]  # three free tries, then wait
    assert 429 in codes[3:]
    r = httpx.post(f"{url}/api/login", json={"name": "zhao", "password": password})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # even the right one
    time.sleep(int(r.headers["retry-after"]) + 0.5)  # the backoff itself, not a timing assert
    r = httpx.post(f"{url}/api/login", json={"name": "zhao", "password": password})
    assert r.status_code == 200
    audit = add_user(gateway.db, "boss", "leader")
    with httpx.Client(base_url=url) as c:
        c.post("/api/login", json={"name": "boss", "password": audit})
        lines = c.get("/api/audit").json()
    assert sum(1 for a in lines if a["action"] == "login" and not a["ok"]) >= 3
