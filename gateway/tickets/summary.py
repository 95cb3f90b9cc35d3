"""Summary and evaluation (总结、评估) of one ticket: for a warning, how long each
responder took, who was escalated past, and the outcome; for a hazard, its steps."""

from __future__ import annotations

from typing import Any

from gateway.core.errors import TicketNotFound
from gateway.tickets.records import read_calls
from gateway.tickets.store import StationStore


def _s(ms: int | None) -> float | None:
    return round(ms / 1000, 1) if ms is not None else None


def summarize(store: StationStore, ticket_id: int) -> dict[str, Any]:
    tk = store.ticket(ticket_id)
    if tk is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist")
    events = store.events(ticket_id)
    calls = read_calls(store, ticket_id)
    lifted = next(
        (e for e in reversed(events) if e.kind == "step" and (e.note or "").startswith("lift")),
        None,
    )
    responders = [
        {
            "person": c.person,
            "name": c.name,
            "grid": c.grid,
            "why": c.why,
            "round": c.round,
            "called_at": c.called_at,
            "due_at": c.due_at,
            "outcome": c.outcome,
            "acked_at": c.acked_at,
            "acked_via": c.acked_via,
            "response_s": _s(c.acked_at - c.called_at) if c.acked_at is not None else None,
        }
        for c in calls
    ]
    escalated_past = list(dict.fromkeys(c.name for c in calls if c.outcome == "escalated"))
    if tk.state == "lifted" and lifted is not None:
        outcome = f"lifted by {lifted.actor}: {(lifted.note or '')[len('lift: ') :]}"
    elif tk.acknowledged_at is not None:
        ack = next((e for e in events if e.kind == "acknowledged"), None)
        via = ack.channel if ack and ack.channel else "api"
        outcome = (
            f"acknowledged by {tk.acknowledged_by} via {via} after "
            f"{_s(tk.acknowledged_at - tk.opened_at)} s"
        )
    elif tk.state in ("closed", "dismissed"):
        outcome = tk.state
    else:
        outcome = "open, not acknowledged" if calls else f"open ({tk.state})"
    steps = [
        {
            "at": e.at,
            "step": (e.note or "").split(":")[0],
            "by": e.actor,
            "role": e.role,
            "note": e.note,
            "after_s": _s(e.at - tk.opened_at),
        }
        for e in events
        if e.kind == "step"
    ]
    return {
        "ticket": tk.to_json(),
        "levels": [
            {"at": e.at, "kind": e.kind, "level": e.level.label if e.level else None}
            for e in events
            if e.kind in ("opened", "raised", "warning_raised", "warning_lowered")
        ],
        "calls": responders,
        "escalations": sum(1 for c in calls if c.why == "escalated"),
        "escalated_past": escalated_past,
        "steps": steps,
        "outcome": outcome,
        "time_to_acknowledge_s": _s(tk.acknowledged_at - tk.opened_at)
        if tk.acknowledged_at is not None
        else None,
    }


def render(summary: dict[str, Any], fmt_time: Any) -> str:
    """The summary as text for the terminal; `fmt_time(ms) -> str`."""
    t = summary["ticket"]
    lines = [
        f"#{t['id']} {t['kind']} {t['level'] or '-'} {t['state']}  {t['title']}",
        f"  opened {fmt_time(t['opened_at'])}; outcome: {summary['outcome']}",
    ]
    if summary["calls"]:
        lines.append("  calls:")
        for c in summary["calls"]:
            took = (
                f"answered in {c['response_s']} s" if c["response_s"] is not None else c["outcome"]
            )
            lines.append(
                f"    {fmt_time(c['called_at'])}  round {c['round']}  {c['grid']:<16} "
                f"{c['name']:<6} ({c['why']})  {took}"
                + (f" via {c['acked_via']}" if c["acked_via"] else "")
            )
        past = ", ".join(summary["escalated_past"]) or "nobody"
        lines.append(f"  escalations: {summary['escalations']}; escalated past: {past}")
    for s in summary["steps"]:
        lines.append(f"  {fmt_time(s['at'])}  {s['note']}  — {s['by']} ({s['role']})")
    return "\n".join(lines)
