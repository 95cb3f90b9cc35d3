"""GET /api/board: the 叫应 board — every active warning with whom it reached so far.

Per warning: level, since when, the answer deadline and the next escalation (from the
persisted escalation state), when the county steps in if nobody answers (`county_due`,
from the deadlines of the county's plan), and one line per person per round (not per retry): the
person's grid level and role, phone (masked for viewers), every channel tried with its
last outcome, and the call's state (pending, acknowledged, not_reached, superseded …).
The page words these in its own language."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request

from gateway.auth.policy import Role
from gateway.core import clock
from gateway.tickets.people import People
from gateway.tickets.records import read_attempts, read_calls, read_deliveries, read_warn_state
from gateway.tickets.store import StationStore

if TYPE_CHECKING:
    from gateway.http.app import Context
    from gateway.http.auth import Access


def mask(phone: str | None) -> str | None:
    """138****0001: enough for a viewer to tell two numbers apart, not to dial."""
    if not phone or len(phone) < 7:
        return phone
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def board(store: StationStore, people: People, masked: bool) -> list[dict[str, Any]]:
    roles = {p.id: [str(r) for r in p.roles] for p in people.everyone}
    out = []
    for t in store.tickets(open_only=True, limit=500):
        if t.kind != "warning":
            continue
        calls = read_calls(store, t.id)
        attempts = read_attempts(store, t.id)
        deliveries = read_deliveries(store, ticket_id=t.id)
        state = read_warn_state(store, t.id)
        channels: dict[int, dict[str, dict[str, Any]]] = {}
        for d in deliveries:
            if d.call_id is None:
                continue
            channels.setdefault(d.call_id, {})[d.channel] = {
                "channel": d.channel,
                "outcome": d.status,
                "at": d.updated_at,
                "tries": d.attempts,
            }
        for a in attempts:  # an attempt says more (answered, no_answer, busy …)
            if a.call_id is None:
                continue
            prev = channels.setdefault(a.call_id, {}).get(a.channel, {"tries": 0})
            channels[a.call_id][a.channel] = {
                "channel": a.channel,
                "outcome": a.outcome or "pending",
                "at": a.ended_at or a.started_at,
                "tries": max(prev.get("tries", 0), 1),
            }
        lines: dict[tuple[int, str], dict[str, Any]] = {}
        for c in calls:  # one line per person per round: the latest call wins
            key = (c.round, c.person)
            line = lines.get(key)
            chans = channels.get(c.id, {})
            if line is None:
                line = {
                    "round": c.round,
                    "person": c.person,
                    "name": c.name,
                    "grid": c.grid.partition(":")[0],
                    "roles": roles.get(c.person, []),
                    "phone": mask(c.phone) if masked else c.phone,
                    "deputy": c.why.startswith("deputy"),
                    "called_at": c.called_at,
                    "channels": {},
                }
                lines[key] = line
            line.update(
                state=c.outcome,
                due_at=c.due_at,
                at=c.acked_at or c.called_at,
                via=c.acked_via,
            )
            line["channels"].update(chans)
        pending = [c.due_at for c in calls if c.outcome == "pending"]
        acked = state is not None and state.acked_at is not None
        level = t.level.label if t.level else None
        steps = [(e.at, e.kind, e.level.label if e.level else None) for e in store.events(t.id)]
        out.append(
            {
                "ticket": t.id,
                "code": t.code,
                "level": level,
                "point": t.point,
                "device": t.device,
                "metric": t.metric,
                "rule": t.rule,
                "value": t.value,
                "since": t.opened_at,
                "acknowledged_at": t.acknowledged_at,
                "acknowledged_by": t.acknowledged_by,
                "answer_due": min(pending) if pending and not acked else None,
                "escalate_at": (
                    state.due_at
                    if state is not None and not acked and not state.exhausted
                    else None
                ),
                # when the county steps in if nobody answers (its plan's deadlines)
                "county_due": people.county_due(level, steps) if level else None,
                "exhausted": bool(state and state.exhausted),
                "round": state.round if state else None,
                "people": [{**p, "channels": list(p["channels"].values())} for p in lines.values()],
            }
        )
    return out


def add_routes(
    app: FastAPI, ctx: Context, reader: Callable[[], StationStore], access: Access
) -> None:

    @app.get("/api/board")
    def get_board(request: Request) -> dict[str, Any]:
        """The 叫应 board: each open warning, whom it called, by which channels, answered
        or not, and when it escalates next. Phones are masked for viewers."""
        masked = access.user(request).role == Role.VIEWER
        p = ctx.people()
        return {
            "now": clock.now_ms(),
            "county": p.county.name if p.county else None,
            "warnings": board(reader(), p, masked),
        }
