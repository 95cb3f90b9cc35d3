"""Summary and evaluation (总结、评估) of one ticket: for a warning, how long each
responder took, who was escalated past, and the outcome; for a hazard, its steps."""

from __future__ import annotations

from typing import Any

from gateway.core.errors import TicketNotFound
from gateway.tickets.records import read_attempts, read_calls
from gateway.tickets.store import StationStore

CHANNEL_ZH = {
    "sms": "短信",
    "voice": "电话",
    "mqtt": "手持终端",
    "robot": "群机器人",
    "broadcast": "广播",
    "siren": "警报器",
    "dashboard": "值班室",
    "webhook": "webhook",
}
OUTCOME_ZH = {
    "sent": "已发送",
    "failed": "失败",
    "confirmed": "按1确认",
    "answered": "接听未确认",
    "busy": "占线/拒接",
    "no_answer": "无人接听",
    "stopped": "已停止",
    "throttled": "限流",
    "sirens": "已鸣警报",
}


def escalation_waves(calls: list[tuple[int, int]]) -> int:
    """Waves of escalation (督导): calls of a round made after the round's start, at one
    time each — whoever they called (deputies, the grid up, the duty officer, leaders)."""
    starts: dict[int, int] = {}
    for rnd, at in calls:
        starts[rnd] = min(at, starts.get(rnd, at))
    return len({(rnd, at) for rnd, at in calls if at > starts[rnd]})


def _s(ms: int | None) -> float | None:
    return round(ms / 1000, 1) if ms is not None else None


def summarize(store: StationStore, ticket_id: int) -> dict[str, Any]:
    tk = store.ticket(ticket_id)
    if tk is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist")
    events = store.events(ticket_id)
    calls = read_calls(store, ticket_id)
    attempts = read_attempts(store, ticket_id)
    by_call: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        if a.call_id is not None:
            by_call.setdefault(a.call_id, []).append(
                {
                    "channel": a.channel,
                    "at": a.started_at,
                    "outcome": a.outcome,
                    "took_s": _s(a.ended_at - a.started_at),
                    "detail": a.detail,
                }
            )
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
            "attempts": by_call.get(c.id, []),
        }
        for c in calls
    ]
    per_channel: dict[str, dict[str, int]] = {}
    for a in attempts:
        per_channel.setdefault(a.channel, {}).setdefault(a.outcome, 0)
        per_channel[a.channel][a.outcome] += 1
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
        "escalations": escalation_waves([(c.round, c.called_at) for c in calls]),
        "escalated_past": escalated_past,
        "attempts": per_channel,
        "not_reached": [c.name for c in calls if c.outcome == "not_reached"],
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
            tries = [
                f"{CHANNEL_ZH.get(a['channel'], a['channel'])} {fmt_time(a['at'])[-8:]} "
                f"{OUTCOME_ZH.get(a['outcome'], a['outcome'])}"
                + (f" {a['took_s']} s" if a["channel"] == "voice" and a["took_s"] else "")
                for a in c["attempts"]
            ]
            if tries:
                lines.append("        " + "; ".join(tries))
        past = ", ".join(summary["escalated_past"]) or "nobody"
        lines.append(f"  escalations: {summary['escalations']}; escalated past: {past}")
        if summary.get("not_reached"):
            lines.append(f"  not reached (with the duty room): {', '.join(summary['not_reached'])}")
        per = summary.get("attempts") or {}
        if per:
            lines.append(
                "  attempts: "
                + "; ".join(
                    f"{CHANNEL_ZH.get(ch, ch)} "
                    + ", ".join(f"{OUTCOME_ZH.get(o, o)} {n}" for o, n in sorted(out.items()))
                    for ch, out in sorted(per.items())
                )
            )
    for s in summary["steps"]:
        lines.append(f"  {fmt_time(s['at'])}  {s['note']}  — {s['by']} ({s['role']})")
    return "\n".join(lines)
