"""HTTP: the JSON API, server-sent events, Prometheus metrics and the duty-room page.

FastAPI for validation and the OpenAPI schema (`/openapi.json`). Its Swagger pages are
off: they load scripts from a CDN and stations are offline. Reads use one read-only
connection per worker thread; writes go through the single writer thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from gateway.config.station import Config
from gateway.core import clock
from gateway.core.errors import TicketConflict, TicketNotFound
from gateway.events import Hub
from gateway.http.params import RowId
from gateway.http.reports import router as reports_router
from gateway.ingest.health import EMPTY, interval_ms, load_health
from gateway.ingest.rules_service import RulesService
from gateway.metrics import Metrics
from gateway.storage.pictures import counts as picture_counts
from gateway.tickets.people import People
from gateway.tickets.store import StationStore, Ticket

if TYPE_CHECKING:
    from gateway.notify.dispatcher import Dispatcher
    from gateway.tickets.desk import Desk
    from gateway.uplinks.service import Uplinks

WEB = Path(str(resources.files("dashboards") / "web"))


@dataclass
class Context:
    """What the HTTP layer needs from a running gateway."""

    config: Config
    db_path: Path
    writer: Executor
    writer_store: StationStore
    hub: Hub
    metrics: Metrics
    broker_connected: Callable[[], bool]
    queue_depth: Callable[[], int]
    store_error: Callable[[], str | None]
    rules: RulesService
    started_at: float
    desk: Desk | None = None  # the warning loop (tickets branch)
    dispatcher: Dispatcher | None = None
    uplinks: Uplinks | None = None  # to the county (GET /api/uplinks)
    clock_skews: Callable[[], dict[str, int]] = dict  # device -> clock lead (ms), when far
    dtus: Callable[[], list[dict[str, Any]]] = list  # 4G DTUs and their counts

    def people(self) -> People:
        """Who the station calls: the desk's `People` (with the county's plan part), or
        the station file's when the warning loop is not running."""
        return self.desk.people if self.desk is not None else People(self.config)


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


def create_app(ctx: Context) -> FastAPI:
    local = threading.local()

    def reader() -> StationStore:
        store: StationStore | None = getattr(local, "store", None)
        if store is None:
            store = StationStore(ctx.db_path, writer=False)
            local.store = store
        return store

    from gateway.auth.policy import ACK_ROLES, RULES_ROLES
    from gateway.http import auth as http_auth
    from gateway.http import limits as http_limits
    from gateway.tickets.desk import policy_of

    access = http_auth.Access(ctx, reader, ctx.desk.policy if ctx.desk else policy_of(ctx.config))
    app = FastAPI(
        title="stationgw",
        summary="Township emergency-management station gateway",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(access.guard)],  # sessions and CSRF on /api/* (http_auth)
    )
    http_limits.install(app)  # body size, 422 without echo (gateway/http/limits.py)
    http_auth.add_routes(app, access)

    station = ctx.config.station

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        error = ctx.store_error()
        broker = ctx.broker_connected()
        return {
            "status": "ok" if broker and error is None else "degraded",
            "station": {"id": station.id, "name": station.name, "timezone": station.timezone},
            "broker": {"connected": broker, "state": "up" if broker else "down"},
            "store": {"ok": error is None, "error": error},
            "queue_depth": ctx.queue_depth(),
            "channels": ctx.dispatcher.status() if ctx.dispatcher else {},
            "uptime_s": round(time.monotonic() - ctx.started_at, 1),
            "clock": {
                "system_offset_s": clock.CLOCK.system_offset_ms() / 1000,
                "device_skew_s": {d: ms / 1000 for d, ms in ctx.clock_skews().items()},
            },
        }

    @app.get("/api/dtus")
    def dtus() -> list[dict[str, Any]]:
        """4G DTUs: connected, peer, since, silence, counts (registered, taken_over,
        refused_duplicate, closed_idle, garbage); refusals of unknown or missing
        registrations per port."""
        return ctx.dtus()

    @app.get("/api/devices")
    def devices() -> list[dict[str, Any]]:
        store = reader()
        states = {d.id: d for d in store.devices()}
        latest = store.latest()
        healths = load_health(store)
        kept = picture_counts(store)
        out = []
        for d in ctx.config.devices:
            state = states.get(d.id)
            metrics = {}
            for name, spec in d.metrics.items():
                ts, value, flags = latest.get((d.id, name), (None, None, 0))
                metrics[name] = {
                    "unit": spec.unit,
                    "value": value,
                    "ts": ts,
                    "out_of_range": bool(flags),
                }
            out.append(
                {
                    "id": d.id,
                    "name": d.name,
                    "kind": d.kind,
                    "point": d.point,
                    "online": state.online if state else False,
                    "last_seen": state.last_seen if state else None,
                    "last_seq": state.last_seq if state else None,
                    "metrics": metrics,
                    "transport": d.transport.kind,
                    "status_at": state.status_at if state else None,
                    "interval_s": (ms / 1000) if (ms := interval_ms(d)) else None,
                    # a value older than this is stale on the page (greyed with its age)
                    "stale_after_ms": (
                        int(ms * ctx.config.health.stale_factor) if (ms := interval_ms(d)) else None
                    ),
                    "health": healths.get(d.id, EMPTY).to_json(),
                    "pictures": kept.get(d.id, 0),
                }
            )
        return out

    @app.get("/api/tickets")
    def tickets(
        open: bool = False, limit: Annotated[int, Query(ge=1, le=10_000)] = 500
    ) -> list[dict[str, Any]]:
        now = clock.now_ms()
        return [t.to_json(now) for t in reader().tickets(open_only=open, limit=limit)]

    @app.get("/api/tickets/{ticket_id}")
    def ticket(ticket_id: RowId) -> dict[str, Any]:
        store = reader()
        t = store.ticket(ticket_id)
        if t is None:
            raise HTTPException(404, f"ticket {ticket_id} does not exist")
        from gateway.tickets.records import read_calls, read_deliveries

        return {
            **t.to_json(clock.now_ms()),
            "events": [e.to_json() for e in store.events(ticket_id)],
            "calls": [c.to_json() for c in read_calls(store, ticket_id)],
            "deliveries": [d.to_json() for d in read_deliveries(store, ticket_id=ticket_id)],
        }

    @app.post("/api/tickets/{ticket_id}/ack")
    async def acknowledge(request: Request, ticket_id: RowId, body: AckBody) -> dict[str, Any]:
        """Acknowledge (叫应回应) a ticket as the logged-in user; answered 2xx only once
        it is stored."""
        loop = asyncio.get_running_loop()
        now = clock.now_ms()
        user = access.require(request, ACK_ROLES, "acknowledge")
        by = user.person or user.name

        def write() -> Ticket:
            if ctx.desk is not None:  # a warning's acknowledgement also stops its calls
                t = ctx.desk.acknowledge(ticket_id, by, "api", body.note, now)
            else:
                t = ctx.writer_store.acknowledge(ticket_id, by, body.note, now)
            return t

        try:
            t = await loop.run_in_executor(ctx.writer, write)
        except TicketNotFound as e:
            raise HTTPException(404, str(e)) from None
        except TicketConflict as e:
            access.record(request, "ticket.ack", str(ticket_id), {"error": str(e)}, ok=False)
            raise HTTPException(409, str(e)) from None
        access.record(request, "ticket.ack", str(ticket_id), {"note": body.note})
        data = t.to_json(now)
        ctx.hub.publish("ticket", data)
        return data

    @app.get("/api/patrols")
    def patrol_records(limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> list[dict[str, Any]]:
        """Patrol records from handheld recorders, newest first, with their flags."""
        from gateway.tickets.patrols import patrols

        return patrols(reader(), limit)

    @app.get("/api/quarantine")
    def quarantine(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return [
            {
                "id": i,
                "received_at": at,
                "source": src,
                "reason": why,
                "payload": payload.decode("utf-8", errors="replace")[:2000],
            }
            for i, at, src, why, payload in reader().quarantined(limit)
        ]

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: `readings`, `ticket`, `device`; while the session lasts."""
        return StreamingResponse(
            access.while_valid(request, ctx.hub.subscribe()),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/rules")
    def rules() -> dict[str, Any]:
        """The rules running, their files, and the errors of files that were rejected."""
        return ctx.rules.status()

    @app.post("/api/rules/reload")
    async def reload_rules(request: Request) -> dict[str, Any]:
        """Re-read the rule files; a file with errors is rejected and its old rules kept."""
        user = access.require(request, RULES_ROLES, "reload rules")
        out = await ctx.rules.reload(f"API ({user.name})")
        access.record(request, "rules.reload", None, {"errors": out.get("errors")})
        return out

    from gateway.http import board as http_board
    from gateway.http import dashboard as http_dashboard
    from gateway.http import faults as http_faults
    from gateway.http.storage import add_routes as add_storage_routes  # readings, storage
    from gateway.http.tickets import add_routes
    from gateway.http.uplinks import add_uplink_routes

    # every route below sits behind access.guard (the app's dependency): sessions and CSRF
    add_routes(app, ctx, reader, access)
    http_dashboard.add_routes(app, ctx, reader, access)
    http_board.add_routes(app, ctx, reader, access)
    app.include_router(reports_router(ctx))
    add_uplink_routes(app, ctx, reader)
    add_storage_routes(app, ctx, reader)
    http_faults.add_routes(app, reader)
    from gateway.http import commands as http_commands

    http_commands.add_routes(app, ctx, reader, access)
    from gateway.http import pictures as http_pictures

    http_pictures.add_routes(app, ctx, reader)

    @app.get("/metrics")
    def metrics() -> Response:
        ctx.metrics.open_tickets.set(reader().count_open_tickets())
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/screen", include_in_schema=False)
    def screen() -> FileResponse:
        """The wall screen: the same page in its 1920×1080 no-scroll layout (kiosk)."""
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
