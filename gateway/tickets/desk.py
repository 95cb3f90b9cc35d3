"""The duty desk: warnings, calls, lifecycle steps and deliveries in the store.

Runs on the writer thread. The ingest calls `after` inside the transaction that applies
a rule transition, so a warning is issued (and its first calls recorded) atomically with
the readings that caused it; the one-second tick calls `tick` inside its transaction for
escalations. Calls and deliveries are rows: what the channels send is an outbox, and a
restart neither loses nor repeats a call. The pure decisions are in `gateway.tickets.lifecycle`
and `gateway.tickets.calls`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gateway.config.loop import default_fault_roles, default_roles
from gateway.config.station import Config
from gateway.core.errors import TicketConflict, TicketNotFound
from gateway.core.model import Level
from gateway.tickets import calls as planner
from gateway.tickets.actions import FINAL, StepRefused, TicketActions
from gateway.tickets.calls import Call, Callee, Plan
from gateway.tickets.fanout import Fanout, calling_policy
from gateway.tickets.lifecycle import Policy, due
from gateway.tickets.model import (
    Action,
    EventKind,
    Note,
    Open,
    Raise,
    TicketKind,
    TicketState,
)
from gateway.tickets.people import People
from gateway.tickets.records import DeliveryRow, delivered, due_deliveries, read_warn_state
from gateway.tickets.store import StationStore, Ticket
from rules.durations import parse_duration
from rules.evaluator import Transition
from rules.reasons import ZH_LEVEL

log = logging.getLogger("stationgw.desk")

__all__ = ["Desk", "StepRefused", "calling_policy", "policy_of"]


def policy_of(cfg: Config) -> Policy:
    deadlines: dict[tuple[str, Level], int] = {}
    for step, levels in cfg.tickets.deadlines.items():
        for lv in Level:
            text = getattr(levels, lv.label)
            if text:
                deadlines[(step, lv)] = parse_duration(text)
    roles = default_roles()
    roles.update({str(k): list(v) for k, v in cfg.tickets.roles.items()})
    fault_roles = default_fault_roles()
    fault_roles.update({str(k): list(v) for k, v in cfg.tickets.fault_roles.items()})
    return Policy(
        roles={k: frozenset(v) for k, v in roles.items()},
        fault_roles={k: frozenset(v) for k, v in fault_roles.items()},
        deadlines=deadlines,
    )


class Desk(TicketActions, Fanout):
    """StationStore-side effects of the warning loop; every method runs inside a transaction
    except the public entry points that open their own (`acknowledge`, `step`, …)."""

    def __init__(self, store: StationStore, cfg: Config) -> None:
        self.store = store
        self.cfg = cfg
        self.people = People(cfg)
        self.policy = policy_of(cfg)
        self.calling = calling_policy(cfg)
        # voice deliveries cancelled while perhaps queued or in flight: not dialled, or
        # hung up (id -> when; kept 10 minutes, longer than any call)
        self.stopped: dict[int, int] = {}
        self.touched: list[int] = []  # ticket ids changed in the current transaction
        # the level the rules hold now at a point (set by the ingest that owns rule state)
        self.point_level: Callable[[str], Level | None] = lambda _point: None
        self.points = {p.id: p for p in cfg.points}

    # --- from the ingest (inside its transaction) -------------------------------------

    def after(self, t: Transition, action: Action | None, ticket_id: int | None, now: int) -> None:
        if ticket_id is not None and isinstance(action, Open):
            self._opened(ticket_id, action, t, now)
        if isinstance(action, Note) and action.kind == EventKind.CONDITION_CLEARED:
            self._set(ticket_id, suggestion="condition_cleared")
        if isinstance(action, Raise) and ticket_id is not None:
            self._set(ticket_id, suggestion=None)
            tk = self.store.ticket(ticket_id)  # a higher level may shorten the stage deadline
            if tk is not None:
                d = due(self.policy, tk.kind, tk.state, action.level, now)
                if d is not None and (tk.due_at is None or d < tk.due_at):
                    self._set(ticket_id, due_at=d)
        if t.kind == "hazard" and t.point:
            self._warning(t, now)

    def _opened(self, ticket_id: int, action: Open, t: Transition, now: int) -> None:
        code = f"{ticket_id:04d}"
        d = due(self.policy, action.kind, TicketState.DISCOVERED, action.level, now)
        self.store.conn.execute(
            "UPDATE tickets SET code = ?, due_at = ? WHERE id = ?", (code, d, ticket_id)
        )
        if action.kind == TicketKind.DEVICE_FAULT:
            # the technician only: the dashboard and an SMS; never responders or sirens
            tk = self.store.ticket(ticket_id)
            assert tk is not None
            self._deliver(tk, None, "dashboard", "duty-room", self._body(tk, None, now), now)
            for p in self.cfg.people:
                if "technician" in p.roles and p.phone and self.cfg.notify.sms:
                    c = self.people.stand_in(p)
                    if c and c.phone:
                        body = self._body(tk, c, now)
                        self._deliver(tk, None, "sms", c.phone, body, now)

    def adopt(self, ticket_id: int, now: int) -> None:
        """A ticket opened elsewhere (a driver's reported hazard) gets its short code and
        stage deadline; call inside the transaction that opened it."""
        tk = self.store.ticket(ticket_id)
        if tk is None or tk.code is not None:
            return
        d = due(self.policy, tk.kind, tk.state, tk.level, now)
        self.store.conn.execute(
            "UPDATE tickets SET code = ?, due_at = ? WHERE id = ?",
            (f"{ticket_id:04d}", d, ticket_id),
        )
        self.touched.append(ticket_id)

    def _set(self, ticket_id: int | None, **cols: Any) -> None:
        if ticket_id is None:
            return
        sets = ", ".join(f"{k} = ?" for k in cols)
        self.store.conn.execute(
            f"UPDATE tickets SET {sets} WHERE id = ?", (*cols.values(), ticket_id)
        )

    def open_warning(self, point: str) -> Ticket | None:
        row = self.store.conn.execute(  # the partial index's condition, verbatim
            "SELECT id FROM tickets WHERE point = ? AND kind = 'warning' "
            "AND state NOT IN ('closed', 'dismissed', 'lifted')",
            (point,),
        ).fetchone()
        return self.store.ticket(row[0]) if row else None

    def _warning(self, t: Transition, now: int) -> None:
        assert t.point is not None
        point: str = t.point
        w = self.open_warning(point)
        reason = f"{t.rule_name}: {t.reason_zh} / {t.reason_en}"
        actor = f"rule:{t.rule}"
        chain = self.people.chain(point)
        duty = self.people.on_duty(now)
        if w is None:
            if t.level is None or not t.rising:
                return
            tid = self.store.open_ticket(
                kind=TicketKind.WARNING,
                level=t.level,
                title=self._warning_title(point, t.level),
                device=None,
                metric=None,
                point=point,
                rule=None,
                value=t.value,
                reason=reason,
                actor=actor,
                at=now,
                ts=t.ts,
            )
            self.store.conn.execute(
                "UPDATE tickets SET state = ?, code = ? WHERE id = ?",
                (str(TicketState.ISSUED), f"{tid:04d}", tid),
            )
            self.store.add_event(tid, now, EventKind.WARNING_ISSUED, actor, level=t.level)
            plan = planner.issue(t.level, now, chain, duty, self.calling)
            self._save_plan(tid, plan, now, "start")
            self.touched.append(tid)
            return
        assert w.level is not None
        state = read_warn_state(self.store, w.id)
        if t.level is not None and t.level > w.level:
            self.store.raise_ticket(
                w.id,
                t.level,
                self._warning_title(point, t.level),
                t.value,
                reason,
                actor,
                now,
                ts=t.ts,
            )
            self._set(w.id, suggestion=None, acknowledged_at=None, acknowledged_by=None)
            self.store.add_event(w.id, now, EventKind.WARNING_RAISED, actor, level=t.level)
            self._close_pending(w.id, "superseded")
            self._cancel_voice(w.id, now)
            assert state is not None
            plan = planner.raise_level(state, t.level, now, chain, duty, self.calling)
            self._save_plan(w.id, plan, now, "start")
            self.touched.append(w.id)
        elif t.level is None or t.level < w.level:
            held = self.point_level(point)  # another rule may still hold the point
            if held is not None and held >= w.level:
                return
            target = held if held is not None and (t.level is None or held > t.level) else t.level
            t = replace(t, level=target)
            auto = {Level.parse(x) for x in self.cfg.tickets.auto_lower}
            if t.level is not None and w.level in auto:
                self.store.conn.execute(
                    "UPDATE tickets SET level = ?, title = ?, updated_at = ?, suggestion = NULL "
                    "WHERE id = ?",
                    (int(t.level), self._warning_title(point, t.level), now, w.id),
                )
                self.store.conn.execute(
                    "UPDATE warning_state SET level = ? WHERE ticket_id = ?", (int(t.level), w.id)
                )
                self.store.add_event(
                    w.id, now, EventKind.WARNING_LOWERED, actor, level=t.level, reason=reason
                )
            else:
                suggestion = f"lower:{t.level.label}" if t.level else "lift"
                self._set(w.id, suggestion=suggestion, updated_at=now)
                self.store.add_event(
                    w.id,
                    now,
                    EventKind.SUGGEST_LOWER,
                    actor,
                    level=t.level,
                    reason=reason,
                    note=suggestion,
                )
            self.touched.append(w.id)

    # --- calls and deliveries --------------------------------------------------------

    def _save_plan(self, ticket_id: int, plan: Plan, now: int, announce: str | None) -> None:
        """Persist the escalation state and record the plan's calls and deliveries;
        `announce` ("start" of a round, "escalated") also alarms the duty room, the
        webhook and — at the start of a round — the sirens and broadcasts of the point."""
        s = plan.state
        self.store.conn.execute(
            "INSERT INTO warning_state (ticket_id, level, round, step, due_at, acked_at, "
            "acked_by, acked_via, exhausted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (ticket_id) DO "
            "UPDATE SET level = excluded.level, round = excluded.round, step = excluded.step, "
            "due_at = excluded.due_at, acked_at = excluded.acked_at, "
            "acked_by = excluded.acked_by, acked_via = excluded.acked_via, "
            "exhausted = excluded.exhausted",
            (
                ticket_id,
                int(s.level),
                s.round,
                s.step,
                s.due_at,
                s.acked_at,
                s.acked_by,
                s.acked_via,
                int(s.exhausted),
            ),
        )
        if announce is None:
            return
        tk = self.store.ticket(ticket_id)
        assert tk is not None
        names = ", ".join(f"{c.callee.name} ({c.why})" for c in plan.calls) or "nobody"
        pt = self.points.get(tk.point or "")
        log.info(
            "warning #%d %s %s %s: calling %s",
            ticket_id,
            "escalated" if announce == "escalated" else f"round {s.round}",
            pt.name if pt else tk.point,
            self.level_zh(s.level),
            names,
        )
        wave: list[tuple[int, Call]] = []
        for c in plan.calls:
            row = self.store.conn.execute(
                "INSERT INTO calls (ticket_id, round, step, grid, person, name, phone, why, "
                "called_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    ticket_id,
                    s.round,
                    c.step,
                    c.grid,
                    c.callee.person,
                    c.callee.name,
                    c.callee.phone,
                    c.why,
                    now,
                    c.due_at,
                ),
            ).fetchone()
            wave.append((int(row[0]), c))
            extra = f", {c.callee.why}" if c.callee.why else ""
            note = f"{c.grid} {c.callee.name} ({c.why}{extra})"
            kind = EventKind.ESCALATED if announce == "escalated" else EventKind.CALLED
            self.store.add_event(ticket_id, now, kind, "desk", level=s.level, note=note)
        self.fan_out(tk, s.level, wave, announce == "start", now)
        body = self._body(tk, None, now)
        self._deliver(tk, None, "dashboard", "duty-room", body, now)
        if self.cfg.notify.webhook is not None:
            self._deliver(tk, None, "webhook", self.cfg.notify.webhook.url, body, now)
        if announce == "start":
            sounded: set[str] = set()
            village = self._village(tk)
            for b in self.cfg.notify.broadcasts:
                if s.level.label in b.levels and village in b.villages:
                    sounded.update(b.sirens)
            for siren in self.cfg.notify.sirens:
                if siren.device in sounded or (
                    tk.point in siren.points and s.level.label in siren.levels
                ):
                    self._deliver(tk, None, "siren", siren.device, body, now)

    def _cancel_voice(self, ticket_id: int, now: int, call_ids: list[int] | None = None) -> None:
        """Voice calls not yet dialled (or waiting for a redial) are not needed any more."""
        where = "ticket_id = ? AND channel = 'voice' AND status = 'pending'"
        args: list[object] = [ticket_id]
        if call_ids is not None:
            where += f" AND call_id IN ({', '.join('?' * len(call_ids))})"
            args += call_ids
        rows = self.store.conn.execute(f"SELECT id FROM deliveries WHERE {where}", args)
        self.mark_stopped([int(r[0]) for r in rows], now)
        self.store.conn.execute(
            f"UPDATE deliveries SET status = 'cancelled', updated_at = ? WHERE {where}",
            (now, *args),
        )

    def _body(self, tk: Ticket, callee: Callee | None, now: int) -> dict[str, Any]:
        """The body of the duty room's alarm, the webhook, sirens and the technician's SMS."""
        if tk.kind == TicketKind.WARNING:
            text = self.text("mqtt", tk, callee.name if callee else "")
        else:
            colour = ZH_LEVEL[tk.level] if tk.level else "设备故障"
            text = f"【{self.cfg.station.name}】{colour} {tk.title}（编号 {tk.code}）"
        return self._base(tk, callee, now, text)

    def _deliver(
        self,
        tk: Ticket,
        call_id: int | None,
        channel: str,
        target: str,
        body: dict[str, Any],
        now: int,
    ) -> None:
        self.store.conn.execute(
            "INSERT INTO deliveries (ticket_id, call_id, channel, target, body, next_at, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tk.id, call_id, channel, target, json.dumps(body, ensure_ascii=False), now, now, now),
        )

    # --- the tick (inside the ingest's tick transaction) -----------------------------

    def tick(self, now: int) -> None:
        rows = self.store.conn.execute(
            "SELECT ticket_id FROM warning_state WHERE due_at IS NOT NULL AND due_at <= ?",
            (now,),
        ).fetchall()
        for (tid,) in rows:
            tk = self.store.ticket(tid)
            state = read_warn_state(self.store, tid)
            if tk is None or state is None:
                continue
            if tk.state in FINAL:
                self.store.conn.execute(
                    "UPDATE warning_state SET due_at = NULL WHERE ticket_id = ?", (tid,)
                )
                continue
            pending = self.store.conn.execute(
                "SELECT id, person FROM calls WHERE ticket_id = ? AND round = ? "
                "AND outcome = 'pending' ORDER BY id",
                (tid, state.round),
            ).fetchall()
            called = {
                r[0]
                for r in self.store.conn.execute(
                    "SELECT person FROM calls WHERE ticket_id = ? AND round = ?",
                    (tid, state.round),
                )
            }
            not_reached = [
                c
                for _, pid in pending
                if (p := self.people.by_id.get(pid)) is not None and (c := self.people.stand_in(p))
            ]
            plan = planner.on_tick(
                state,
                now,
                self.people.chain(tk.point),
                self.people.on_duty(now),
                self.calling,
                not_reached=not_reached,
                called=called,
                leaders=self.people.leaders(),
            )
            if plan is None:
                continue
            self._cancel_voice(tid, now, [int(r[0]) for r in pending])
            if plan.state.exhausted:
                self._close_pending(tid, "not_reached")
                self._save_plan(tid, plan, now, None)
                names = "、".join(dict.fromkeys(self._name(pid) for _, pid in pending))
                text = (
                    f"【{self.cfg.station.name}】{tk.title}：未叫应 {names or '无'}，请值班室处置"
                )
                self.store.add_event(
                    tid, now, EventKind.NOT_REACHED, "desk", level=state.level, note=names
                )
                self._deliver(
                    tk, None, "dashboard", "duty-room", self._base(tk, None, now, text), now
                )
                log.warning(
                    "warning #%d %s at %s: not reached: %s; nobody new to call, the list "
                    "stays with the duty room",
                    tid,
                    state.level.label,
                    tk.point,
                    names or "nobody",
                )
            else:
                self._close_pending(tid, "escalated")
                self._save_plan(tid, plan, now, "escalated")
            self.store.touch_ticket(tid, now)
            self.touched.append(tid)

    def _name(self, pid: str) -> str:
        p = self.people.by_id.get(pid)
        return p.name if p else pid

    # --- entry points with their own transaction --------------------------------------

    def acknowledge(self, ticket_id: int, by: str, via: str, note: str | None, now: int) -> Ticket:
        """叫应回应: a warning's call answered; any other ticket acknowledged as before."""
        with self.store.transaction():
            tk = self.store.ticket(ticket_id)
            if tk is None:
                raise TicketNotFound(f"ticket {ticket_id} does not exist")
            if tk.state in FINAL:
                raise TicketConflict(f"ticket {ticket_id} is {tk.state}")
            if tk.acknowledged_at is not None:
                raise TicketConflict(
                    f"ticket {ticket_id} was already acknowledged by {tk.acknowledged_by}"
                )
            person = self.people.find(by)
            name = person.name if person else by
            self.store.conn.execute(
                "UPDATE tickets SET acknowledged_at = ?, acknowledged_by = ?, updated_at = ? "
                "WHERE id = ?",
                (now, name, now, ticket_id),
            )
            self.store.add_event(
                ticket_id, now, EventKind.ACKNOWLEDGED, name, note=note, channel=via
            )
            if tk.kind == TicketKind.WARNING:
                state = read_warn_state(self.store, ticket_id)
                if state is not None:
                    acked = planner.acknowledge(state, now, name, via)
                    self._save_plan(ticket_id, Plan(acked, ()), now, None)
                pid = person.id if person else by
                self.store.conn.execute(
                    "UPDATE calls SET outcome = 'acknowledged', acked_at = ?, acked_via = ? "
                    "WHERE id = (SELECT id FROM calls WHERE ticket_id = ? AND person = ? "
                    "AND outcome = 'pending' ORDER BY id DESC LIMIT 1)",
                    (now, via, ticket_id, pid),
                )
                self._close_pending(ticket_id, "answered")
                self._cancel_voice(ticket_id, now)
        out = self.store.ticket(ticket_id)
        assert out is not None
        return out

    def ticket_by_code(self, code: str) -> Ticket | None:
        row = self.store.conn.execute(
            f"SELECT id FROM tickets WHERE code = ? AND state NOT IN "
            f"({', '.join('?' * len(FINAL))})",
            (code, *FINAL),
        ).fetchone()
        return self.store.ticket(row[0]) if row else None

    # --- the deliveries outbox (the dispatcher) ---------------------------------------

    def due_deliveries(self, now: int, skip: set[int], limit: int = 200) -> list[DeliveryRow]:
        return due_deliveries(self.store, now, skip, limit)

    def delivered(
        self,
        delivery_id: int,
        error: str | None,
        now: int,
        max_attempts: int,
        *,
        outcome: str | None = None,
        started_at: int | None = None,
    ) -> DeliveryRow | None:
        self.stopped.pop(delivery_id, None)
        return delivered(
            self.store,
            delivery_id,
            error,
            now,
            max_attempts,
            outcome=outcome,
            started_at=started_at,
        )
