"""Patrol records and checklists (巡查清单): what a record is checked against, and storage.

A record is always kept. What does not match the configuration is written in its
`flags`: an unknown checklist, a checklist not meant for the point's kind, an unknown
point, items the checklist does not have, items it has that the record skipped.
"""

from __future__ import annotations

import json
from typing import Any

from drivers.handheld.codec import Record
from gateway.config.station import Config
from gateway.storage.store import Store


def flags(cfg: Config, r: Record) -> list[str]:
    out: list[str] = []
    points = {p.id: p for p in cfg.points}
    point = points.get(r.point) if r.point else None
    if r.point and point is None:
        out.append(f"unknown point {r.point!r}")
    if r.checklist is None:
        return out
    checklist = next((c for c in cfg.checklists if c.id == r.checklist), None)
    if checklist is None:
        out.append(f"unknown checklist {r.checklist!r}")
        return out
    if point is not None and checklist.point_kinds and point.kind not in checklist.point_kinds:
        out.append(f"checklist {checklist.id!r} is not for points of kind {point.kind!r}")
    known = {i.id for i in checklist.items}
    done = {i.item for i in r.items}
    if extra := sorted(done - known):
        out.append(f"items not in checklist {checklist.id!r}: {', '.join(extra)}")
    if missing := sorted(known - done):
        out.append(f"checklist items not reported: {', '.join(missing)}")
    return out


def store_record(
    store: Store, device: str, r: Record, found: list[str], ticket: int | None, received: int
) -> bool:
    """Insert once per (recorder, record id); True when it was new."""
    cur = store.conn.execute(
        "INSERT OR IGNORE INTO patrol_records (device, record_id, inspector, point, at, "
        "checklist, items, text, photo, flags, ticket_id, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            device,
            r.id,
            r.by,
            r.point,
            r.at,
            r.checklist,
            json.dumps(
                [{"item": i.item, "result": i.result, "note": i.note} for i in r.items],
                ensure_ascii=False,
            ),
            r.text,
            r.photo,
            json.dumps(found, ensure_ascii=False),
            ticket,
            received,
        ),
    )
    return cur.rowcount == 1


def patrols(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT device, record_id, inspector, point, at, checklist, items, text, photo, flags, "
        "ticket_id, received_at FROM patrol_records ORDER BY at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "device": r[0],
            "id": r[1],
            "by": r[2],
            "point": r[3],
            "at": r[4],
            "checklist": r[5],
            "items": json.loads(r[6]),
            "text": r[7],
            "photo": r[8],
            "flags": json.loads(r[9] or "[]"),
            "ticket": r[10],
            "received_at": r[11],
        }
        for r in rows
    ]
