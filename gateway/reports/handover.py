"""A shift handover record (交接班记录) as plain data: who handed over to whom and when,
the notes, the tickets and warnings open at the handover (as stored with it), and what
happened on the shift — the ticket events since the handover before it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.config.station import Config
from gateway.core.errors import GatewayError
from gateway.core.model import Level
from gateway.tickets.ledger import KIND_ZH, LEVEL_ZH, STATE_ZH
from gateway.tickets.people import People

DEFAULT_SHIFT_MS = 12 * 3_600_000  # the first handover looks back this far
STEP_ZH = {
    "confirm": "确认",
    "control": "管控",
    "rectify": "整改",
    "close": "核销",
    "dismiss": "撤销（误报）",
    "lift": "解除预警",
}
CHANNEL_ZH = {"sms": "短信", "mqtt": "手持终端", "api": "值班台"}


class HandoverNotFound(GatewayError):
    """No handover with that id (or none at all)."""


@dataclass(frozen=True, slots=True)
class Happened:
    at: int
    ticket: int
    title: str
    what: str


@dataclass(frozen=True, slots=True)
class Handover:
    id: int
    at: int
    since: int  # the shift began: the handover before, or DEFAULT_SHIFT_MS earlier
    from_name: str
    to_name: str
    note: str | None
    open_items: list[dict[str, Any]]
    happened: list[Happened]
    calls: int
    escalations: int


def _zh_level(level: int | None) -> str:
    return LEVEL_ZH[Level(level).label] if level else ""


def _what(kind: str, actor: str, level: int | None, note: str | None, channel: str | None) -> str:
    lv = _zh_level(level)
    if kind == "opened":
        return f"新增（{actor}）" + (f"，{lv}" if lv else "")
    if kind in ("raised", "warning_raised"):
        return f"提级为{lv}"
    if kind == "warning_issued":
        return f"发布{lv}预警"
    if kind == "warning_lowered":
        return f"{actor} 降级为{lv}"
    if kind == "acknowledged":
        return f"{actor} 回应（{CHANNEL_ZH.get(channel or '', channel or '值班台')}）"
    if kind == "step":
        step, _, text = (note or "").partition(":")
        return f"{actor} {STEP_ZH.get(step, step)}" + (f"：{text.strip()}" if text.strip() else "")
    if kind == "escalated":
        return f"督导升级，呼叫 {note or ''}".strip()
    if kind == "fault_cleared":
        return "设备故障已恢复"
    if kind == "fault_again":
        return "设备故障再次出现"
    if kind == "condition_cleared":
        return "规则条件已解除（待人工处理）"
    if kind == "suggest_lower":
        return "规则回落，建议" + ("解除" if note == "lift" else f"降为{lv}")
    if kind == "reported":
        return f"{actor} 上报" + (f"：{note}" if note else "")
    return kind


_SHOWN = (
    "opened",
    "raised",
    "warning_issued",
    "warning_raised",
    "warning_lowered",
    "acknowledged",
    "step",
    "escalated",
    "fault_cleared",
    "fault_again",
    "condition_cleared",
    "suggest_lower",
    "reported",
)


def handover(conn: sqlite3.Connection, cfg: Config, handover_id: int | None) -> Handover:
    """The handover `handover_id`, or the latest one when None."""
    cols = "id, at, from_person, to_person, note, open_items"
    row = (
        conn.execute(f"SELECT {cols} FROM handovers ORDER BY at DESC, id DESC LIMIT 1").fetchone()
        if handover_id is None
        else conn.execute(f"SELECT {cols} FROM handovers WHERE id = ?", (handover_id,)).fetchone()
    )
    if row is None:
        raise HandoverNotFound(
            "no shift handover is stored yet"
            if handover_id is None
            else f"handover {handover_id} does not exist"
        )
    hid, at, a, b, note, items = row
    before = conn.execute(
        "SELECT MAX(at) FROM handovers WHERE at < ? OR (at = ? AND id < ?)", (at, at, hid)
    ).fetchone()[0]
    since = int(before) if before is not None else at - DEFAULT_SHIFT_MS
    people = People(cfg)
    rows = conn.execute(
        f"SELECT e.at, e.ticket_id, t.title, t.kind, e.kind, e.actor, e.level, e.note, e.channel "
        f"FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
        f"WHERE e.at > ? AND e.at <= ? AND e.kind IN ({', '.join('?' * len(_SHOWN))}) "
        f"ORDER BY e.at, e.id",
        (since, at, *_SHOWN),
    ).fetchall()
    happened = [
        Happened(
            at=e_at,
            ticket=tid,
            title=f"{KIND_ZH.get(tkind, tkind)} {title}",
            what=_what(kind, actor[5:] if actor.startswith("rule:") else actor, lv, n, ch),
        )
        for e_at, tid, title, tkind, kind, actor, lv, n, ch in rows
    ]
    calls, escalations = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(why IN ('escalated', 'deputy', 'leader')), 0) FROM calls "
        "WHERE called_at > ? AND called_at <= ?",
        (since, at),
    ).fetchone()

    def name(who: str) -> str:
        p = people.find(who)
        return p.name if p else who

    open_items = [
        {
            **item,
            "kind_zh": KIND_ZH.get(item.get("kind", ""), item.get("kind", "")),
            "level_zh": LEVEL_ZH.get(item.get("level") or "", ""),
            "state_zh": STATE_ZH.get(item.get("state", ""), item.get("state", "")),
        }
        for item in json.loads(items)
    ]
    return Handover(
        hid, at, since, name(a), name(b), note, open_items, happened, int(calls), int(escalations)
    )
