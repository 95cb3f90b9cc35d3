"""Which deliveries a wave of calls makes, per the level's calling policy: for each person
called, one SMS, one MQTT alert and one voice call (redialled by its own rhythm); for the
wave, one message per group robot of the point's village (mentioning the wave's people)
and, at the start of a round, one announcement per village broadcaster. Every delivery is
a row of the outbox written in the transaction of the decision; the texts come from
`gateway.tickets.messages`. Also: stopping a round (lift, lower) and saying so.

Mixed into `Desk`; runs inside its transactions on the writer thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from gateway.config.loop import CallingLevel, not_reached_ms
from gateway.config.station import Config
from gateway.core.model import Level
from gateway.tickets.calls import Call, Callee, LevelPolicy
from gateway.tickets.messages import LEVEL_ZH, Facts, reading_zh, render
from gateway.tickets.model import EventKind
from gateway.tickets.store import StationStore, Ticket
from rules.durations import parse_duration

log = logging.getLogger("stationgw.desk")


def calling_policy(cfg: Config) -> dict[Level, LevelPolicy]:
    """`[tickets.calling]` (and `ack_deadline`) as the planner's per-level policy."""
    out: dict[Level, LevelPolicy] = {}
    for lv in Level:
        pol: CallingLevel = getattr(cfg.tickets.calling, lv.label)
        out[lv] = LevelPolicy(
            not_reached=not_reached_ms(cfg.tickets, lv.label),  # type: ignore[arg-type]
            voice_after=parse_duration(pol.voice_after) if pol.voice_after is not None else None,
            redials=pol.redials,
            redial_every=parse_duration(pol.redial_every),
            duty_at_once=pol.duty_at_once,
            escalate=tuple(pol.escalate),
            channels=tuple(pol.channels),
        )
    return out


class Fanout:
    store: StationStore
    cfg: Config
    calling: dict[Level, LevelPolicy]
    stopped: dict[int, int]  # voice deliveries not to dial / to hang up -> since when

    # --- texts ------------------------------------------------------------------------

    def facts(self, tk: Ticket, names: str) -> Facts:
        pt = next((p for p in self.cfg.points if p.id == tk.point), None)
        village = next((v.name for v in self.cfg.villages if pt and v.id == pt.village), "")
        reading = reading_zh(tk.reason)
        return Facts(
            station=self.cfg.station.name,
            point=pt.name if pt else (tk.point or ""),
            village=village,
            level=tk.level or Level.BLUE,
            reading=reading,
            code=tk.code or "",
            name=names,
        )

    def text(self, channel: str, tk: Ticket, names: str) -> str:
        n = self.cfg.notify
        return render(channel, self.facts(tk, names), n.templates, n.plan, n.limits)

    def _add_delivery(
        self,
        tk: Ticket,
        call_id: int | None,
        channel: str,
        target: str,
        body: dict[str, Any],
        next_at: int,
        now: int,
        *,
        max_attempts: int | None = None,
        retry_ms: int | None = None,
    ) -> None:
        self.store.conn.execute(
            "INSERT INTO deliveries (ticket_id, call_id, channel, target, body, next_at, "
            "created_at, updated_at, max_attempts, retry_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tk.id,
                call_id,
                channel,
                target,
                json.dumps(body, ensure_ascii=False),
                next_at,
                now,
                now,
                max_attempts,
                retry_ms,
            ),
        )

    def _base(self, tk: Ticket, callee: Callee | None, now: int, text: str) -> dict[str, Any]:
        return {
            "ticket": tk.id,
            "code": tk.code,
            "kind": tk.kind,
            "level": tk.level.label if tk.level else None,
            "title": tk.title,
            "point": tk.point,
            "person": callee.person if callee else None,
            "name": callee.name if callee else None,
            "text": text,
            "at": now,
        }

    # --- a wave -----------------------------------------------------------------------

    def fan_out(
        self, tk: Ticket, level: Level, wave: Sequence[tuple[int, Call]], start: bool, now: int
    ) -> None:
        """The deliveries of the calls just recorded (`(call id, call)`); `start`: the
        first wave of a round (village broadcast)."""
        pol = self.calling[level]
        n = self.cfg.notify
        for call_id, c in wave:
            who = c.callee
            if "mqtt" in pol.channels and n.mqtt.enabled:
                body = self._base(tk, who, now, self.text("mqtt", tk, who.name))
                self._add_delivery(tk, call_id, "mqtt", who.person, body, now, now)
            if who.phone and "sms" in pol.channels and n.sms is not None:
                body = self._base(tk, who, now, self.text("sms", tk, who.name))
                self._add_delivery(tk, call_id, "sms", who.phone, body, now, now)
            if who.phone and pol.voice_after is not None and n.voice is not None and n.sms:
                body = self._base(tk, who, now, self.text("voice", tk, who.name))
                self._add_delivery(
                    tk,
                    call_id,
                    "voice",
                    who.phone,
                    body,
                    now + pol.voice_after,
                    now,
                    max_attempts=1 + pol.redials,
                    retry_ms=pol.redial_every,
                )
        village = self._village(tk)
        if "robot" in pol.channels and (wave or start):  # the group hears of a new round
            names = "、".join(c.callee.name for _, c in wave)
            phones = [c.callee.phone for _, c in wave if c.callee.phone]
            for r in n.robots:
                if level.label in r.levels and (not r.villages or village in r.villages):
                    body = self._base(tk, None, now, self.text("robot", tk, names))
                    body["mentions"] = phones if r.mention else []
                    body["names"] = names
                    self._add_delivery(tk, None, "robot", r.id, body, now, now)
        if start and "broadcast" in pol.channels:
            for b in n.broadcasts:
                if level.label in b.levels and village in b.villages:
                    body = self._base(tk, None, now, self.text("broadcast", tk, ""))
                    body["clip"] = b.clips.get(level.label, "")
                    body["village"] = village
                    self._add_delivery(tk, None, "broadcast", b.id, body, now, now)
                    self.store.add_event(
                        tk.id, now, EventKind.BROADCAST, "desk", note=f"{b.id} {village}"
                    )

    def _village(self, tk: Ticket) -> str | None:
        pt = next((p for p in self.cfg.points if p.id == tk.point), None)
        return pt.village if pt else None

    # --- stopping a round -------------------------------------------------------------

    def stop_round(self, tk: Ticket, outcome: str, said: str, now: int) -> list[str]:
        """Lifted or lowered: pending calls end with `outcome`, voice calls waiting or in
        progress stop (hung up), and everyone called in the round is told `said` on the
        channels they were called on. The names told."""
        rows = self.store.conn.execute(
            "SELECT id FROM deliveries WHERE ticket_id = ? AND channel = 'voice' "
            "AND status = 'pending'",
            (tk.id,),
        ).fetchall()
        self.mark_stopped([int(r[0]) for r in rows], now)
        self.store.conn.execute(
            "UPDATE deliveries SET status = 'cancelled', updated_at = ? WHERE ticket_id = ? "
            "AND channel = 'voice' AND status = 'pending'",
            (now, tk.id),
        )
        self.store.conn.execute(
            "UPDATE warning_state SET due_at = NULL WHERE ticket_id = ?", (tk.id,)
        )
        rnd = self.store.conn.execute(
            "SELECT MAX(round) FROM calls WHERE ticket_id = ?", (tk.id,)
        ).fetchone()[0]
        called = self.store.conn.execute(
            "SELECT DISTINCT person, name, phone FROM calls WHERE ticket_id = ? AND round = ? "
            "ORDER BY id",
            (tk.id, rnd),
        ).fetchall()
        self.store.conn.execute(
            "UPDATE calls SET outcome = ? WHERE ticket_id = ? AND outcome = 'pending'",
            (outcome, tk.id),
        )
        text = f"【{self.cfg.station.name}】{said}"
        n = self.cfg.notify
        for person, name, phone in called:
            body = self._base(tk, Callee(person, name, phone), now, text)
            body["stop"] = True
            if n.mqtt.enabled:
                self._add_delivery(tk, None, "mqtt", person, body, now, now)
            if phone and n.sms is not None:
                self._add_delivery(tk, None, "sms", phone, body, now, now)
        village = self._village(tk)
        for r in n.robots:
            if not r.villages or village in r.villages:
                body = self._base(tk, None, now, text)
                body["mentions"] = []
                self._add_delivery(tk, None, "robot", r.id, body, now, now)
        self._add_delivery(
            tk, None, "dashboard", "duty-room", self._base(tk, None, now, text), now, now
        )
        names = [str(c[1]) for c in called]
        log.info(
            "warning #%d %s: calls stopped, told %s", tk.id, outcome, ", ".join(names) or "nobody"
        )
        return names

    def mark_stopped(self, ids: list[int], now: int) -> None:
        for i in ids:
            self.stopped[i] = now
        for i, at in list(self.stopped.items()):
            if now - at > 600_000:  # long over: no call lasts ten minutes
                del self.stopped[i]

    def level_zh(self, level: Level) -> str:
        return LEVEL_ZH[level]
