"""The hazard ledger (隐患台账): every ticket with its steps, times, people and overdue
flags, with the Chinese column headers a township reports upward; CSV or XLSX."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.tickets.store import StationStore, Ticket, TicketEvent

HEADERS = (
    "序号",
    "编号",
    "类别",
    "隐患名称",
    "预警级别",
    "监测点",
    "设备",
    "发现时间",
    "发现人",
    "确认时间",
    "确认人",
    "管控时间",
    "管控措施",
    "管控人",
    "整改时间",
    "整改情况",
    "整改人",
    "核销时间",
    "核销人",
    "当前状态",
    "叫应人",
    "叫应时间",
    "是否超期",
    "备注",
)
KIND_ZH = {"hazard": "隐患", "device_fault": "设备故障", "warning": "预警"}
LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
STATE_ZH = {
    "discovered": "发现",
    "confirmed": "已确认",
    "controlled": "管控中",
    "rectified": "已整改",
    "closed": "已核销",
    "dismissed": "已撤销（误报）",
    "issued": "预警中",
    "lifted": "已解除",
}


def _step(events: list[TicketEvent], name: str) -> TicketEvent | None:
    return next(
        (e for e in reversed(events) if e.kind == "step" and (e.note or "").split(":")[0] == name),
        None,
    )


def _note(e: TicketEvent | None) -> str:
    if e is None or not e.note or ":" not in e.note:
        return ""
    return e.note.split(":", 1)[1].strip()


def rows(
    store: StationStore,
    start: int | None,
    end: int | None,
    now: int,
    tz: str = "Asia/Shanghai",
    names: dict[str, str] | None = None,
) -> list[list[Any]]:
    """One row per ticket opened in [start, end), oldest first; times in the station zone;
    `names` maps monitoring point and device ids to their names (ids without it)."""
    names = names or {}
    zone = ZoneInfo(tz)

    def local(ms: int | None) -> str:
        if ms is None:
            return ""
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    tickets: list[Ticket] = sorted(store.tickets(limit=10_000_000), key=lambda t: t.id)
    out: list[list[Any]] = []
    for t in tickets:
        if start is not None and t.opened_at < start:
            continue
        if end is not None and t.opened_at >= end:
            continue
        ev = store.events(t.id)
        opened = ev[0] if ev else None
        confirm, control, rectify, close = (
            _step(ev, s) for s in ("confirm", "control", "rectify", "close")
        )
        dismiss = _step(ev, "dismiss") or _step(ev, "lift")
        finder = opened.actor if opened else ""
        out.append(
            [
                len(out) + 1,
                t.code or f"{t.id:04d}",
                KIND_ZH.get(t.kind, t.kind),
                t.title,
                LEVEL_ZH.get(t.level.label, "") if t.level else "",
                names.get(t.point, t.point) if t.point else "",
                f"{names.get(t.device, t.device)}/{t.metric}" if t.device else "",
                local(t.opened_at),
                "系统（规则 " + finder[5:] + "）" if finder.startswith("rule:") else finder,
                local(confirm.at if confirm else None),
                confirm.actor if confirm else "",
                local(control.at if control else None),
                _note(control),
                control.actor if control else "",
                local(rectify.at if rectify else None),
                _note(rectify),
                rectify.actor if rectify else "",
                local(close.at if close else None),
                close.actor if close else "",
                STATE_ZH.get(t.state, t.state),
                t.acknowledged_by or "",
                local(t.acknowledged_at),
                "是" if t.overdue(now) else "否",
                _note(dismiss) if dismiss else (t.reason or ""),
            ]
        )
    return out


def names_of(cfg: Any) -> dict[str, str]:
    """Point and device names of a station file, for the ledger."""
    out = {p.id: p.name for p in cfg.points}
    out.update({d.id: d.name for d in cfg.devices})
    return out


def to_csv(table: list[list[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel on a township PC reads the Chinese."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADERS)
    w.writerows(table)
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(table: list[list[Any]], title: str = "隐患台账") -> bytes:
    from openpyxl import Workbook  # only the export needs it
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    def clean(v: Any) -> Any:
        # control characters in a ticket's free text made openpyxl raise (a 500, found by
        # schemathesis); a worksheet cannot hold them, so they are left out
        return ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v

    wb = Workbook()
    ws = wb.active
    ws.title = "隐患台账"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(list(HEADERS))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in table:
        ws.append([clean(v) for v in row])
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
