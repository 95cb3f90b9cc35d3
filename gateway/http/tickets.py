"""HTTP routes of the warning loop: lifecycle steps, reports, lifting and lowering
warnings, summaries, the ledger export, deliveries, people and duty, shift handovers.

Writes go through the single writer thread and are answered 2xx once stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.auth.policy import HANDOVER_ROLES, REPORT_ROLES, TICKET_ROLES, Role
from gateway.core import clock
from gateway.core.errors import TicketError, TicketNotFound
from gateway.core.model import Level
from gateway.http.params import MAX_ROW_ID, RowId
from gateway.tickets import ledger
from gateway.tickets.desk import Desk, StepRefused
from gateway.tickets.lifecycle import Step
from gateway.tickets.records import read_attempts, read_calls, read_deliveries, read_handovers
from gateway.tickets.store import StationStore, Ticket
from gateway.tickets.summary import summarize

if TYPE_CHECKING:
    from gateway.http.app import Context
    from gateway.http.auth import Access

T = TypeVar("T")


def now_ms() -> int:
    return clock.now_ms()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepBody(_Body):
    step: Literal["confirm", "control", "rectify", "close", "dismiss"]
    note: str | None = Field(default=None, max_length=2000)
    attachments: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=20)


class LiftBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class LowerBody(_Body):
    level: Literal["blue", "yellow", "orange"]


class ReportBody(_Body):
    title: str = Field(min_length=1, max_length=200)
    point: str | None = None
    level: Literal["blue", "yellow", "orange", "red"] | None = None
    note: str | None = Field(default=None, max_length=2000)
    attachments: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=20)


class HandoverBody(_Body):
    to: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=4000)


def _ms(v: int | datetime | None) -> int | None:
    if v is None or isinstance(v, int):
        return v
    return int(v.timestamp() * 1000)


def add_routes(
    app: FastAPI, ctx: Context, reader: Callable[[], StationStore], access: Access
) -> None:
    """Who acts is the logged-in user (their people-file id when they have one), in
    their role; the station's ticket policy decides which steps that role may take."""
    desk: Desk | None = ctx.desk

    def need_desk() -> Desk:
        if desk is None:
            raise HTTPException(503, "the warning loop is not running")
        return desk

    def actor(request: Request, roles: frozenset[Role], action: str) -> tuple[str, str]:
        user = access.require(request, roles, action)
        return user.person or user.name, str(user.role)

    async def write(
        request: Request, action: str, target: str | None, detail: Any, fn: Callable[[], T]
    ) -> T:
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(ctx.writer, fn)
        except TicketError as e:
            access.record(request, action, target, {**detail, "error": str(e)}, ok=False)
            if isinstance(e, TicketNotFound):
                raise HTTPException(404, str(e)) from None
            if isinstance(e, StepRefused):
                raise HTTPException(
                    403 if e.why == "role" else 422 if e.why == "reason" else 409,
                    {"why": e.why, "message": str(e)},
                ) from None
            raise HTTPException(409, str(e)) from None
        access.record(request, action, target, detail)
        return out

    def announce(t: Ticket) -> dict[str, Any]:
        data = t.to_json(now_ms())
        ctx.hub.publish("ticket", data)
        if ctx.dispatcher is not None:
            ctx.dispatcher.wake()
        return data

    @app.post("/api/tickets", status_code=201)
    async def report(request: Request, body: ReportBody) -> dict[str, Any]:
        """A hazard entered by hand (its own ticket), by the logged-in user."""
        d = need_desk()
        now = now_ms()
        by, role = actor(request, REPORT_ROLES, "report a hazard")
        level = Level.parse(body.level) if body.level else None
        t = await write(
            request,
            "ticket.report",
            body.point,
            {"title": body.title},
            lambda: d.report(
                title=body.title,
                point=body.point,
                level=level,
                by=by,
                role=role,
                note=body.note,
                attachments=body.attachments,
                now=now,
            ),
        )
        return announce(t)

    @app.post("/api/tickets/{ticket_id}/steps")
    async def step(request: Request, ticket_id: RowId, body: StepBody) -> dict[str, Any]:
        """A lifecycle step: confirm, control, rectify, close (write-off), dismiss.
        403 when the role may not take it, 409 when the state does not allow it or the
        write-off is by the person who rectified, 422 when a dismissal has no reason."""
        d = need_desk()
        now = now_ms()
        by, role = actor(request, TICKET_ROLES, body.step)
        t = await write(
            request,
            "ticket.step",
            str(ticket_id),
            {"step": body.step, "note": body.note},
            lambda: d.step(ticket_id, Step(body.step), by, role, body.note, body.attachments, now),
        )
        return announce(t)

    @app.post("/api/tickets/{ticket_id}/lift")
    async def lift(request: Request, ticket_id: RowId, body: LiftBody) -> dict[str, Any]:
        """解除预警: lift a warning, with a reason."""
        d = need_desk()
        now = now_ms()
        by, role = actor(request, TICKET_ROLES, "lift")
        t = await write(
            request,
            "ticket.lift",
            str(ticket_id),
            {"reason": body.reason},
            lambda: d.step(ticket_id, Step.LIFT, by, role, body.reason, (), now),
        )
        return announce(t)

    @app.post("/api/tickets/{ticket_id}/lower")
    async def lower(request: Request, ticket_id: RowId, body: LowerBody) -> dict[str, Any]:
        """Lower a warning (after the rule's suggestion); no new calls."""
        d = need_desk()
        now = now_ms()
        by, role = actor(request, TICKET_ROLES, "lower")
        t = await write(
            request,
            "ticket.lower",
            str(ticket_id),
            {"level": body.level},
            lambda: d.lower(ticket_id, Level.parse(body.level), by, role, now),
        )
        return announce(t)

    @app.get("/api/tickets/{ticket_id}/summary")
    def summary(ticket_id: RowId) -> dict[str, Any]:
        """Summary and evaluation: response times per call, escalations, outcome."""
        try:
            return summarize(reader(), ticket_id)
        except TicketNotFound as e:
            raise HTTPException(404, str(e)) from None

    @app.get("/api/tickets/{ticket_id}/calls")
    def calls(ticket_id: RowId) -> dict[str, Any]:
        """Every call, delivery and attempt (who, channel, when, outcome, how long)."""
        store = reader()
        return {
            "calls": [c.to_json() for c in read_calls(store, ticket_id)],
            "deliveries": [d.to_json() for d in read_deliveries(store, ticket_id=ticket_id)],
            "attempts": [a.to_json() for a in read_attempts(store, ticket_id)],
        }

    @app.get("/api/ledger")
    def export(
        from_: Annotated[int | AwareDatetime | None, Query(alias="from")] = None,
        to: int | AwareDatetime | None = None,
        format: Literal["csv", "xlsx", "json"] = "csv",
    ) -> Response:
        """The hazard ledger (隐患台账) of tickets opened in [from, to); default everything."""
        table = ledger.rows(
            reader(),
            _ms(from_),
            _ms(to),
            now_ms(),
            ctx.config.station.timezone,
            ledger.names_of(ctx.config),
        )
        if format == "json":
            import json

            data = [dict(zip(ledger.HEADERS, r, strict=True)) for r in table]
            return Response(json.dumps(data, ensure_ascii=False), media_type="application/json")
        if format == "xlsx":
            return Response(
                ledger.to_xlsx(table),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": 'attachment; filename="ledger.xlsx"'},
            )
        return Response(
            ledger.to_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
        )

    @app.get("/api/deliveries")
    def deliveries(
        status: Literal["pending", "sent", "failed", "cancelled"] | None = None,
        ticket: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> dict[str, Any]:
        """Channel deliveries with their status, attempts and last error."""
        rows = read_deliveries(reader(), ticket_id=ticket, status=status, limit=limit)
        return {
            "channels": ctx.dispatcher.status() if ctx.dispatcher else {},
            "deliveries": [d.to_json() for d in rows],
        }

    @app.get("/api/people")
    def people() -> dict[str, Any]:
        """The people file, the county's people its plan brought, and the duty officer on
        shift now."""
        p = ctx.people()
        duty = p.on_duty(now_ms())
        return {
            "people": [x.model_dump() for x in p.everyone],
            "county": (
                {"name": p.county.name, "deadlines": p.county.deadlines.model_dump()}
                if p.county
                else None
            ),
            "duty": [s.model_dump() for s in ctx.config.duty],
            "on_duty": {"person": duty.person, "name": duty.name, "why": duty.why}
            if duty
            else None,
        }

    @app.get("/api/handovers")
    def handovers(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        return read_handovers(reader(), limit)

    @app.post("/api/handovers", status_code=201)
    async def handover(request: Request, body: HandoverBody) -> dict[str, Any]:
        """A shift handover from the logged-in user; the open tickets and warnings are
        listed automatically."""
        d = need_desk()
        now = now_ms()
        user = access.require(request, HANDOVER_ROLES, "hand over a shift")
        name = user.name
        if user.person and (p := ctx.people().find(user.person)) is not None:
            name = p.name
        return await write(
            request,
            "handover",
            body.to,
            {"note": body.note},
            lambda: d.handover(name, body.to, body.note, now),
        )
