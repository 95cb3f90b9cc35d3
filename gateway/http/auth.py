"""HTTP access: log in and out, the first admin from a one-time setup token, the session
check in front of every `/api/*` route, CSRF on state-changing requests, the audit log.

Public: `/api/health` (probes, the test and bench harnesses), `/api/session` (tells the
page whether someone is logged in and whether the first admin is still to be created),
`/api/login`, `/api/setup`; `/metrics` and the page's own files are outside `/api`.
Everything else under `/api` answers 401 without a valid session and 403 when a
POST/PUT/PATCH/DELETE lacks the session's CSRF token (header `X-CSRF-Token`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth.policy import (
    ADDRESS,
    AUDIT_ROLES,
    PAIR,
    SESSION_COOKIE,
    Attempts,
    PasswordTooWeak,
    Role,
    after_failure,
    new_token,
    permissions,
    token_id,
    wait_ms,
)
from gateway.auth.users import (
    Session,
    User,
    UserError,
    add_user,
    audit,
    count_users,
    login,
    logout,
    read_audit,
    session,
)
from gateway.storage.store import Store
from gateway.tickets.lifecycle import Policy

if TYPE_CHECKING:
    from gateway.http.app import Context

log = logging.getLogger("stationgw.http")
T = TypeVar("T")

PUBLIC = frozenset({"/api/health", "/api/session", "/api/login", "/api/setup"})
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED = 10_000  # addresses (and name, address pairs) remembered for the throttle


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SetupBody(LoginBody):
    token: str = Field(min_length=1, max_length=200)


class Access:
    """The session check and the audit log, shared by every route module."""

    def __init__(self, ctx: Context, reader: Callable[[], Store], policy: Policy) -> None:
        self.ctx = ctx
        self.reader = reader
        self.policy = policy
        self.by_address: dict[str, Attempts] = {}  # any name from one address
        self.by_pair: dict[tuple[str, str], Attempts] = {}  # one name from one address
        self.setup_hash: str | None = None
        if count_users(reader()) == 0:
            token = new_token()
            self.setup_hash = token_id(token)
            log.warning(
                "no users yet. Create the first admin on the web page with the one-time "
                "setup token %s, or on the console: stationgw users add NAME --role admin "
                "-c STATION_FILE",
                token,
            )

    def setup_pending(self) -> bool:
        """The setup token is good until the first user exists (made here or on the
        console with `stationgw users add`)."""
        if self.setup_hash is not None and count_users(self.reader()) > 0:
            self.setup_hash = None
        return self.setup_hash is not None

    # the global dependency -----------------------------------------------------------

    def guard(self, request: Request) -> None:
        path = request.url.path
        if not path.startswith("/api/") or path in PUBLIC:
            return
        token = request.cookies.get(SESSION_COOKIE)
        s = session(self.reader(), token, now_ms()) if token else None
        if s is None:
            raise HTTPException(401, "log in first")
        if request.method not in SAFE:
            sent = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(sent.encode(), s.csrf.encode()):
                raise HTTPException(403, {"why": "csrf", "message": "missing or wrong CSRF token"})
        request.state.session = s

    # helpers for routes ----------------------------------------------------------------

    async def while_valid(
        self, request: Request, stream: AsyncIterator[bytes], every_s: float = 15.0
    ) -> AsyncIterator[bytes]:
        """Pass a long-lived stream (SSE) on while its session lasts: a logout, a new
        password or the end of the session ends it within `every_s`."""
        token = request.cookies.get(SESSION_COOKIE, "")
        checked = time.monotonic()
        async for chunk in stream:
            if time.monotonic() - checked >= every_s:
                if session(self.reader(), token, now_ms()) is None:
                    return
                checked = time.monotonic()
            yield chunk

    @staticmethod
    def user(request: Request) -> User:
        s: Session = request.state.session
        return s.user

    def require(self, request: Request, roles: Iterable[str], action: str) -> User:
        u = self.user(request)
        if u.role not in roles:
            self.record(request, action, None, {"refused": "role"}, ok=False)
            raise HTTPException(403, {"why": "role", "message": f"a {u.role} may not {action}"})
        return u

    def record(
        self,
        request: Request,
        action: str,
        target: str | None,
        detail: dict[str, Any] | None,
        *,
        ok: bool = True,
        user: User | None = None,
    ) -> None:
        """Write one audit line on the writer thread (not waited for)."""
        u = user if user is not None else getattr(request.state, "session", None)
        who = u.user if isinstance(u, Session) else u
        src = request.client.host if request.client else "?"
        store = self.ctx.writer_store

        def tx() -> None:
            with store.transaction():
                audit(store, now_ms(), who, action, target, detail, src, ok)

        self.ctx.writer.submit(tx)

    async def on_writer(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.ctx.writer, fn)


def _set_cookie(request: Request, response: JSONResponse, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def add_routes(app: FastAPI, access: Access) -> None:
    ctx = access.ctx

    def me(s: Session) -> dict[str, Any]:
        return {
            "user": s.user.to_json(),
            "csrf": s.csrf,
            "may": permissions(access.policy, s.user.role),
        }

    @app.get("/api/session")
    def current(request: Request) -> dict[str, Any]:
        """Who is logged in (with the CSRF token to send back), or `user: null`."""
        token = request.cookies.get(SESSION_COOKIE)
        s = session(access.reader(), token, now_ms()) if token else None
        if s is None:
            return {"user": None, "setup": access.setup_pending()}
        return me(s)

    def lockout(address: str, name: str, now: int) -> None:
        """Refuse a try that comes before its wait is over (gateway.auth: growing waits
        per address and per name at that address; never a lock)."""
        w = max(
            wait_ms(access.by_address.get(address, Attempts()), now, ADDRESS),
            wait_ms(access.by_pair.get((address, name), Attempts()), now, PAIR),
        )
        if w > 0:
            secs = -(-w // 1000)  # rounded up
            raise HTTPException(
                429,
                {"why": "locked", "message": "too many wrong tries", "retry_after_s": secs},
                headers={"Retry-After": str(secs)},
            )

    def failed(address: str, name: str, now: int) -> None:
        if len(access.by_address) >= MAX_TRACKED:
            access.by_address.clear()
        if len(access.by_pair) >= MAX_TRACKED:
            access.by_pair.clear()
        access.by_address[address] = after_failure(access.by_address.get(address, Attempts()), now)
        pair = (address, name)
        access.by_pair[pair] = after_failure(access.by_pair.get(pair, Attempts()), now)

    @app.post("/api/login")
    async def do_login(request: Request, body: LoginBody) -> JSONResponse:
        """Password login: a new session cookie (HttpOnly, SameSite=Strict, Secure over
        TLS). Wrong passwords make the next try wait, growing to at most a minute for one
        name from one address; nothing locks (README, Security)."""
        now = now_ms()
        address = request.client.host if request.client else "?"
        lockout(address, body.name, now)
        old = request.cookies.get(SESSION_COOKIE)
        store = ctx.writer_store
        result = await access.on_writer(lambda: login(store, body.name, body.password, old, now))
        if result.session is None or result.token is None:
            if result.why != "locked":  # a try refused for its wait does not count again
                failed(address, body.name, now)
            access.record(request, "login", body.name, {"why": result.why}, ok=False, user=None)
            if result.why == "locked":
                secs = -(-result.wait_ms // 1000)  # rounded up
                raise HTTPException(
                    429,
                    {"why": "locked", "message": "locked: try later", "retry_after_s": secs},
                    headers={"Retry-After": str(secs)},
                )
            raise HTTPException(401, {"why": "wrong", "message": "wrong name or password"})
        access.by_pair.pop((address, body.name), None)
        access.record(request, "login", body.name, None, user=result.session.user)
        response = JSONResponse(me(result.session))
        _set_cookie(request, response, result.token)
        return response

    @app.post("/api/logout")
    async def do_logout(request: Request) -> JSONResponse:
        token = request.cookies.get(SESSION_COOKIE, "")
        access.record(request, "logout", None, None)
        await access.on_writer(lambda: logout(ctx.writer_store, token))
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.post("/api/setup")
    async def setup(request: Request, body: SetupBody) -> JSONResponse:
        """The first admin, with the one-time token the gateway printed at start."""
        now = now_ms()
        address = request.client.host if request.client else "?"
        lockout(address, "(setup)", now)
        want = access.setup_hash if access.setup_pending() else None
        if want is None or not hmac.compare_digest(token_id(body.token), want):
            failed(address, "(setup)", now)
            access.record(request, "setup", body.name, None, ok=False)
            raise HTTPException(403, {"why": "token", "message": "no setup pending or wrong token"})
        store = ctx.writer_store

        def create() -> User:
            if count_users(store) > 0:
                raise UserError("users exist already")
            return add_user(store, body.name, Role.ADMIN, body.password, None, now, address)

        try:
            await access.on_writer(create)
        except (UserError, PasswordTooWeak) as e:
            raise HTTPException(422, {"why": "user", "message": str(e)}) from None
        access.setup_hash = None  # one time only
        result = await access.on_writer(lambda: login(store, body.name, body.password, None, now))
        assert result.session is not None and result.token is not None
        access.record(request, "setup", body.name, None, user=result.session.user)
        response = JSONResponse(me(result.session), status_code=201)
        _set_cookie(request, response, result.token)
        return response

    @app.get("/api/audit")
    def audit_log(
        request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 200
    ) -> list[dict[str, Any]]:
        """The audit log, newest first (admin, leader)."""
        access.require(request, AUDIT_ROLES, "read the audit log")
        return read_audit(access.reader(), limit)
