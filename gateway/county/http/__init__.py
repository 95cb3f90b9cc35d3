"""The county page and its API: the station's look, roles, login, CSRF and languages.

Any county instance serves it (its state is all in PostgreSQL), so the page polls
`/api/overview` every few seconds instead of a per-instance event stream. Public:
`/api/health`, `/api/session`, `/api/login`; every other `/api/*` answers 401 without a
session and 403 when a POST lacks the session's CSRF token (`X-CSRF-Token`), exactly as
the station's (gateway/http/auth.py). Reads use one connection per worker thread.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth.policy import (
    ACK_ROLES,
    ADDRESS,
    AUDIT_ROLES,
    PAIR,
    RULES_ROLES,
    SESSION_COOKIE,
    Attempts,
    Role,
    after_failure,
    wait_ms,
)
from gateway.county import escalation, plans, users, views
from gateway.county.config import CountyConfig
from gateway.http.params import RowId

StationId = Annotated[str, FastApiPath(max_length=64)]

WEB = Path(str(resources.files("dashboards") / "web"))  # style.css, vendored libraries
PAGE = Path(str(resources.files("dashboards") / "county"))

PUBLIC = frozenset({"/api/health", "/api/session", "/api/login"})
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED = 10_000


class ConnectionSource(Protocol):
    def connect(self) -> Any: ...


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class PlanBody(BaseModel):
    """A plan pushed from the page: the rules file's text, the target, the version."""

    model_config = ConfigDict(extra="forbid")
    rules: str = Field(max_length=plans.MAX_PLAN_BYTES)
    target: str = Field(default="all", min_length=1, max_length=140)
    version: str | None = Field(default=None, max_length=64)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def permissions(role: Role) -> dict[str, object]:
    return {"ack": role in ACK_ROLES, "audit": role in AUDIT_ROLES, "plan": role in RULES_ROLES}


def create_app(cfg: CountyConfig, store: ConnectionSource) -> FastAPI:
    local = threading.local()
    opened: list[Any] = []  # every thread's connection, closed when the app stops
    lock = threading.Lock()

    def db() -> Any:
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = store.connect()
            conn.autocommit = True  # reads see the newest; changes in explicit transactions
            local.conn = conn
            with lock:
                opened.append(conn)
        return conn

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        with lock:
            for c in opened:
                with contextlib.suppress(Exception):
                    c.close()
            opened.clear()

    by_address: dict[str, Attempts] = {}
    by_pair: dict[tuple[str, str], Attempts] = {}

    def guard(request: Request) -> None:
        path = request.url.path
        if not path.startswith("/api/") or path in PUBLIC:
            return
        token = request.cookies.get(SESSION_COOKIE)
        s = users.session(db(), token, now_ms()) if token else None
        if s is None:
            raise HTTPException(401, "log in first")
        if request.method not in SAFE:
            sent = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(sent.encode(), s.csrf.encode()):
                raise HTTPException(403, {"why": "csrf", "message": "missing or wrong CSRF token"})
        request.state.session = s

    def user(request: Request) -> users.User:
        s: users.Session = request.state.session
        return s.user

    def record(
        request: Request,
        action: str,
        target: str | None,
        detail: dict[str, Any] | None,
        *,
        ok: bool = True,
        who: users.User | None = None,
    ) -> None:
        src = request.client.host if request.client else "?"
        if who is None and hasattr(request.state, "session"):
            who = user(request)
        with db().transaction():
            users.audit(db(), who, action, target, detail, src, ok)

    app = FastAPI(
        title="stationgw county",
        summary="The county duty room: every township station",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(guard)],
        lifespan=lifespan,
    )
    from gateway.http import limits as http_limits

    http_limits.install(app)  # body size, 422 without echo (as the station's)

    @app.get("/api/health")
    def health(request: Request) -> dict[str, Any]:
        """For probes and the instances' operators: the store, this instance's consumer
        (service.run sets `app.state.consumer`) and the fleet's counts."""
        fleet: dict[str, int] | None = None
        try:
            row = (
                db()
                .execute(
                    "SELECT count(*), count(*) FILTER (WHERE last_seen > now() - interval "
                    "'5 minutes'), (SELECT count(*) FROM quarantine) FROM stations"
                )
                .fetchone()
            )
            fleet = {"stations": int(row[0]), "online": int(row[1]), "quarantined": int(row[2])}
            store_ok, error = True, None
        except Exception as e:  # the probe says what is wrong instead of failing
            store_ok, error = False, type(e).__name__
            with contextlib.suppress(Exception):
                local.conn.close()
            local.conn = None
        consumer = getattr(request.app.state, "consumer", None)
        return {
            "status": "ok" if store_ok else "degraded",
            "county": {"name": cfg.county.name, "timezone": cfg.county.timezone},
            "store": {"ok": store_ok, "error": error},
            "postgres": "ok" if store_ok else error,
            "fleet": fleet,
            "consumer": consumer.status() if consumer is not None else None,
        }

    def me(s: users.Session) -> dict[str, Any]:
        return {"user": s.user.to_json(), "csrf": s.csrf, "may": permissions(s.user.role)}

    @app.get("/api/session")
    def current(request: Request) -> dict[str, Any]:
        token = request.cookies.get(SESSION_COOKIE)
        s = users.session(db(), token, now_ms()) if token else None
        if s is None:
            return {"user": None, "setup": False}
        return me(s)

    @app.post("/api/login")
    def do_login(request: Request, body: LoginBody) -> JSONResponse:
        """Password login; wrong passwords make the next try wait (the station's rule)."""
        now = now_ms()
        address = request.client.host if request.client else "?"
        w = max(
            wait_ms(by_address.get(address, Attempts()), now, ADDRESS),
            wait_ms(by_pair.get((address, body.name), Attempts()), now, PAIR),
        )
        if w > 0:
            secs = -(-w // 1000)
            raise HTTPException(
                429,
                {"why": "locked", "message": "too many wrong tries", "retry_after_s": secs},
                headers={"Retry-After": str(secs)},
            )
        old = request.cookies.get(SESSION_COOKIE)
        result = users.login(db(), body.name, body.password, old, now)
        if result.session is None or result.token is None:
            if result.why != "locked":
                if len(by_address) >= MAX_TRACKED:
                    by_address.clear()
                if len(by_pair) >= MAX_TRACKED:
                    by_pair.clear()
                by_address[address] = after_failure(by_address.get(address, Attempts()), now)
                pair = (address, body.name)
                by_pair[pair] = after_failure(by_pair.get(pair, Attempts()), now)
            record(request, "login", body.name, {"why": result.why}, ok=False)
            if result.why == "locked":
                secs = -(-result.wait_ms // 1000)
                raise HTTPException(
                    429,
                    {"why": "locked", "message": "locked: try later", "retry_after_s": secs},
                    headers={"Retry-After": str(secs)},
                )
            raise HTTPException(401, {"why": "wrong", "message": "wrong name or password"})
        by_pair.pop((address, body.name), None)
        record(request, "login", body.name, None, who=result.session.user)
        response = JSONResponse(me(result.session))
        response.set_cookie(
            SESSION_COOKIE,
            result.token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/api/logout")
    def do_logout(request: Request) -> JSONResponse:
        token = request.cookies.get(SESSION_COOKIE, "")
        record(request, "logout", None, None)
        users.logout(db(), token)
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/api/overview")
    def overview() -> dict[str, Any]:
        """Everything the duty room's main screen shows, in one answer: warnings in force
        with their 叫应 state, the county's own tickets, the fleet's health."""
        now = now_ms()
        conn = db()
        return {
            "now": now,
            "county": {"name": cfg.county.name, "timezone": cfg.county.timezone},
            "groups": {g.id: g.name for g in cfg.groups},
            "escalation": cfg.escalation.model_dump(),
            "warnings": views.warnings(conn, cfg, now),
            "county_tickets": views.county_tickets(conn, cfg),
            "fleet": views.fleet(conn, cfg, now),
            "on_duty": _on_duty(cfg, now),
        }

    @app.get("/api/map")
    def county_map() -> dict[str, Any]:
        return views.county_map(db(), cfg, now_ms())

    @app.get("/api/county-tickets")
    def county_tickets(all: bool = False) -> list[dict[str, Any]]:
        return views.county_tickets(db(), cfg, open_only=not all)

    @app.post("/api/county-tickets/{ticket_id}/ack")
    def ack(request: Request, ticket_id: RowId, body: AckBody) -> dict[str, Any]:
        """The county duty officer takes a county ticket (签收); 409 when it was taken or
        closed already."""
        u = user(request)
        if u.role not in ACK_ROLES:
            record(request, "county_ticket.ack", str(ticket_id), {"refused": "role"}, ok=False)
            raise HTTPException(403, {"why": "role", "message": f"a {u.role} may not acknowledge"})
        by = u.person or u.name
        out = escalation.ack(db(), ticket_id, by, now_ms())
        if out is None:
            record(request, "county_ticket.ack", str(ticket_id), {"error": "state"}, ok=False)
            raise HTTPException(409, f"county ticket {ticket_id} is not open")
        record(request, "county_ticket.ack", str(ticket_id), {"note": body.note})
        return out

    @app.get("/api/stations/{station}")
    def station(station: StationId) -> dict[str, Any]:
        out = views.station_detail(db(), cfg, station, now_ms())
        if out is None:
            raise HTTPException(404, "no such station")
        return out

    @app.get("/api/stations/{station}/readings")
    def station_readings(
        station: StationId,
        device: Annotated[str, Query(max_length=64)],
        metric: Annotated[str, Query(max_length=64)],
        start: Annotated[int | None, Query(alias="from", ge=0)] = None,
        end: Annotated[int | None, Query(alias="to", ge=0)] = None,
    ) -> dict[str, Any]:
        now = now_ms()
        to = end if end is not None else now
        frm = start if start is not None else to - 86_400_000
        if frm >= to or to - frm > 400 * 86_400_000:
            raise HTTPException(422, "from must come before to, within 400 days")
        return {"points": views.readings(db(), station, device, metric, frm, to)}

    @app.get("/api/report", response_model=None)
    def report(
        month: Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")],
        format: Literal["json", "html", "pdf"] = "json",
    ) -> dict[str, Any] | Response:
        """The county monthly report: figures per township (JSON, the page draws it), or
        the document, as the station's monthly report (HTML, PDF)."""
        y, m = (int(x) for x in month.split("-"))
        data = views.monthly(db(), cfg, y, m)
        if format == "json":
            return data
        from gateway.county.report import report_html

        html = report_html(cfg, data, now_ms())
        if format == "html":
            return HTMLResponse(html)
        from gateway.reports.pdf import PdfError, html_to_pdf

        try:
            pdf = html_to_pdf(html)
        except PdfError as e:
            raise HTTPException(503, str(e)) from None
        name = f"county-report-{month}.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )

    @app.get("/api/audit")
    def audit_log(
        request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 200
    ) -> list[dict[str, Any]]:
        if user(request).role not in AUDIT_ROLES:
            raise HTTPException(403, {"why": "role", "message": "may not read the audit log"})
        return users.read_audit(db(), limit)

    @app.get("/api/plans")
    def plans_pushed() -> dict[str, Any]:
        """The rule plans pushed, with how many stations run each, and what the consumer
        refused lately (counted per station and reason)."""
        conn = db()
        return {"plans": plans.plans_running(conn), "refused": views.refused(conn, cfg)}

    @app.post("/api/plans", status_code=201)
    async def push_plan(request: Request, body: PlanBody) -> dict[str, Any]:
        """Push a rules plan to all stations, a group or one station, as `stationgw county
        plan push` does (a technician or an admin): 422 with every problem when it does not
        check, 503 when the cluster cannot be reached."""
        import nats.errors
        import psycopg

        u = user(request)
        if u.role not in RULES_ROLES:
            record(request, "plan.push", body.target, {"refused": "role"}, ok=False)
            raise HTTPException(403, {"why": "role", "message": f"a {u.role} may not push plans"})
        try:
            plan = plans.make_plan(cfg, body.rules, body.target, body.version, now_ms(), "plan")
            rev = await plans.push(cfg, plan, u.person or u.name, store.connect)
        except plans.PlanRefused as e:
            record(request, "plan.push", body.target, {"problems": e.problems[:20]}, ok=False)
            raise HTTPException(422, {"why": "plan", "problems": e.problems}) from None
        except (OSError, TimeoutError, nats.errors.Error, psycopg.Error) as e:
            record(request, "plan.push", body.target, {"error": str(e)[:200]}, ok=False)
            raise HTTPException(
                503, {"why": "bus", "message": f"the county bus or store: {e}"}
            ) from None
        record(request, "plan.push", plan.version, {"target": plan.target, "hash": plan.hash})
        return {
            "version": plan.version,
            "target": plan.target,
            "hash": plan.hash,
            "revision": rev,
            "people": len(plan.county["people"]),
        }

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    @app.get("/screen", include_in_schema=False)
    def screen() -> FileResponse:
        """The wall screen: the same page in its 1920×1080 no-scroll layout."""
        return FileResponse(PAGE / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    app.mount("/county", StaticFiles(directory=PAGE), name="county")
    return app


def _on_duty(cfg: CountyConfig, now: int) -> str | None:
    p = escalation.on_duty(cfg.people, cfg.duty, cfg.county.timezone, now)
    return p.name if p else None
