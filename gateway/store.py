"""SQLite store: WAL, one writer connection, reader connections per thread.

Every method is synchronous; the pipeline runs writes on one dedicated thread so the
event loop never waits on the disk. `synchronous=FULL`: a committed batch survives a power
cut, which is what lets the gateway acknowledge it to the broker.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StoreError, TicketConflict, TicketNotFound
from gateway.migrations import migrate
from gateway.model import Level, Reading
from gateway.tickets import FINAL_STATES, EventKind, OpenTicket, TicketKind, TicketState
from rules.evaluator import SeriesKey, SeriesState

_FINAL = tuple(str(s) for s in FINAL_STATES)
_OPEN_CLAUSE = f"state NOT IN ({', '.join(repr(s) for s in _FINAL)})"


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    kind: str
    level: Level
    state: str
    title: str
    device: str | None
    metric: str | None
    rule: str | None
    value: float | None
    opened_at: int
    updated_at: int
    acknowledged_at: int | None
    acknowledged_by: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "level": self.level.label,
            "state": self.state,
            "title": self.title,
            "device": self.device,
            "metric": self.metric,
            "rule": self.rule,
            "value": self.value,
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
        }


@dataclass(frozen=True, slots=True)
class TicketEvent:
    id: int
    ticket_id: int
    at: int
    kind: str
    actor: str
    level: Level | None
    value: float | None
    note: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ticket_id": self.ticket_id,
            "at": self.at,
            "kind": self.kind,
            "actor": self.actor,
            "level": self.level.label if self.level else None,
            "value": self.value,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class DeviceState:
    id: str
    online: bool
    status_at: int | None
    last_seen: int | None
    last_seq: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "online": self.online,
            "status_at": self.status_at,
            "last_seen": self.last_seen,
            "last_seq": self.last_seq,
        }


_INSERT_READING = "INSERT OR IGNORE INTO readings (series_id, ts, value, flags) VALUES (?, ?, ?, ?)"

_TICKET_COLS = (
    "id, kind, level, state, title, device, metric, rule, value, opened_at, updated_at, "
    "acknowledged_at, acknowledged_by"
)


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row[0],
        kind=row[1],
        level=Level(row[2]),
        state=row[3],
        title=row[4],
        device=row[5],
        metric=row[6],
        rule=row[7],
        value=row[8],
        opened_at=row[9],
        updated_at=row[10],
        acknowledged_at=row[11],
        acknowledged_by=row[12],
    )


class Store:
    """One connection to the station database. Not shared between threads."""

    def __init__(self, path: Path, *, writer: bool = True) -> None:
        self.path = path
        try:
            if writer:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(path, isolation_level=None)
            else:
                if not path.exists():
                    raise StoreError(f"{path}: no station database here")
                self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 5000")
            if writer:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
                self.conn.execute("PRAGMA foreign_keys = ON")
                migrate(self.conn)
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot open database: {e}") from e
        self._series: dict[tuple[str, str], int] = {}

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._series.clear()  # ids of series created in this transaction are gone
            raise
        self.conn.execute("COMMIT")

    # --- readings ---------------------------------------------------------------------

    def series_id(self, device: str, metric: str) -> int:
        key = (device, metric)
        sid = self._series.get(key)
        if sid is None:
            row = self.conn.execute(
                "INSERT INTO series (device, metric) VALUES (?, ?) "
                "ON CONFLICT (device, metric) DO UPDATE SET device = device RETURNING id",
                key,
            ).fetchone()
            sid = int(row[0])
            self._series[key] = sid
        return sid

    def insert_readings(self, readings: Iterable[Reading]) -> list[Reading]:
        """Insert; return the readings that were new (a duplicate key is stored once).

        Row by row: one executemany with a savepoint fallback for duplicates was measured
        (`stationgw bench`, BENCHMARKS.md) at the same ~2 µs per reading; SQLite's B-tree
        insert is the cost, not the Python loop.
        """
        new: list[Reading] = []
        cur = self.conn.cursor()
        series = self._series
        for r in readings:
            sid = series.get((r.device, r.metric)) or self.series_id(r.device, r.metric)
            cur.execute(_INSERT_READING, (sid, r.ts, r.value, r.flags))
            if cur.rowcount == 1:
                new.append(r)
        return new

    def readings(
        self, device: str, metric: str, start: int, end: int, limit: int = 100_000
    ) -> list[tuple[int, float, int]]:
        """(ts, value, flags) for start <= ts < end, oldest first."""
        row = self.conn.execute(
            "SELECT id FROM series WHERE device = ? AND metric = ?", (device, metric)
        ).fetchone()
        if row is None:
            return []
        rows = self.conn.execute(
            "SELECT ts, value, flags FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts LIMIT ?",
            (row[0], start, end, limit),
        ).fetchall()
        return [(int(t), float(v), int(f)) for t, v, f in rows]

    def latest(self) -> dict[tuple[str, str], tuple[int, float, int]]:
        """Newest reading of every series: (device, metric) -> (ts, value, flags)."""
        rows = self.conn.execute(
            "SELECT s.device, s.metric, r.ts, r.value, r.flags FROM series s "
            "JOIN readings r ON r.series_id = s.id AND r.ts = "
            "(SELECT MAX(ts) FROM readings WHERE series_id = s.id)"
        ).fetchall()
        return {(d, m): (int(t), float(v), int(f)) for d, m, t, v, f in rows}

    def count_readings(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    # --- devices and quarantine ------------------------------------------------------

    def register_devices(self, ids: Iterable[str]) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO devices (id) VALUES (?)", [(i,) for i in ids]
            )

    def device_seen(self, device: str, at: int, seq: int | None) -> None:
        self.conn.execute(
            "UPDATE devices SET last_seen = MAX(COALESCE(last_seen, 0), ?), "
            "last_seq = COALESCE(?, last_seq) WHERE id = ?",
            (at, seq, device),
        )

    def device_status(self, device: str, online: bool, at: int) -> None:
        self.conn.execute(
            "UPDATE devices SET online = ?, status_at = ? WHERE id = ?",
            (int(online), at, device),
        )

    def devices(self) -> list[DeviceState]:
        rows = self.conn.execute(
            "SELECT id, online, status_at, last_seen, last_seq FROM devices ORDER BY id"
        ).fetchall()
        return [DeviceState(r[0], bool(r[1]), r[2], r[3], r[4]) for r in rows]

    def device(self, device_id: str) -> DeviceState | None:
        r = self.conn.execute(
            "SELECT id, online, status_at, last_seen, last_seq FROM devices WHERE id = ?",
            (device_id,),
        ).fetchone()
        return DeviceState(r[0], bool(r[1]), r[2], r[3], r[4]) if r else None

    def quarantine(self, received_at: int, source: str, reason: str, payload: bytes) -> None:
        self.conn.execute(
            "INSERT INTO quarantine (received_at, source, reason, payload) VALUES (?, ?, ?, ?)",
            (received_at, source, reason, payload),
        )

    def quarantined(self, limit: int = 100) -> list[tuple[int, int, str, str, bytes]]:
        rows = self.conn.execute(
            "SELECT id, received_at, source, reason, payload FROM quarantine "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(a), int(b), str(c), str(d), bytes(e)) for a, b, c, d, e in rows]

    # --- rule state -------------------------------------------------------------------

    def rule_state(self) -> dict[SeriesKey, SeriesState]:
        rows = self.conn.execute(
            "SELECT rule, device, metric, level, last_ts FROM rule_state"
        ).fetchall()
        return {
            (r, d, m): SeriesState(Level(lv) if lv is not None else None, int(ts))
            for r, d, m, lv, ts in rows
        }

    def save_rule_state(self, updates: Mapping[SeriesKey, SeriesState]) -> None:
        self.conn.executemany(
            "INSERT INTO rule_state (rule, device, metric, level, last_ts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (rule, device, metric) DO UPDATE SET "
            "level = excluded.level, last_ts = excluded.last_ts",
            [
                (k[0], k[1], k[2], int(s.level) if s.level else None, s.last_ts)
                for k, s in updates.items()
            ],
        )

    # --- tickets ----------------------------------------------------------------------

    def open_ticket_for(self, rule: str, device: str, metric: str) -> OpenTicket | None:
        row = self.conn.execute(
            f"SELECT id, level FROM tickets WHERE rule = ? AND device = ? AND metric = ? "
            f"AND {_OPEN_CLAUSE}",
            (rule, device, metric),
        ).fetchone()
        return OpenTicket(int(row[0]), Level(row[1])) if row else None

    def open_ticket(
        self,
        *,
        kind: TicketKind,
        level: Level,
        title: str,
        device: str,
        metric: str,
        rule: str,
        value: float,
        at: int,
    ) -> int:
        row = self.conn.execute(
            "INSERT INTO tickets (kind, level, state, title, device, metric, rule, value, "
            "opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                str(kind),
                int(level),
                str(TicketState.DISCOVERED),
                title,
                device,
                metric,
                rule,
                value,
                at,
                at,
            ),
        ).fetchone()
        ticket_id = int(row[0])
        self.add_event(ticket_id, at, EventKind.OPENED, "rule:" + rule, level=level, value=value)
        return ticket_id

    def raise_ticket(
        self, ticket_id: int, level: Level, title: str, value: float, actor: str, at: int
    ) -> None:
        self.conn.execute(
            "UPDATE tickets SET level = ?, title = ?, value = ?, updated_at = ? WHERE id = ?",
            (int(level), title, value, at, ticket_id),
        )
        self.add_event(ticket_id, at, EventKind.RAISED, actor, level=level, value=value)

    def touch_ticket(self, ticket_id: int, at: int) -> None:
        self.conn.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (at, ticket_id))

    def add_event(
        self,
        ticket_id: int,
        at: int,
        kind: EventKind,
        actor: str,
        *,
        level: Level | None = None,
        value: float | None = None,
        note: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO ticket_events (ticket_id, at, kind, actor, level, value, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, at, str(kind), actor, int(level) if level else None, value, note),
        )

    def acknowledge(self, ticket_id: int, by: str, note: str | None, at: int) -> Ticket:
        with self.transaction():
            ticket = self.ticket(ticket_id)
            if ticket is None:
                raise TicketNotFound(f"ticket {ticket_id} does not exist")
            if ticket.acknowledged_at is not None:
                raise TicketConflict(
                    f"ticket {ticket_id} was already acknowledged by {ticket.acknowledged_by}"
                )
            if ticket.state in _FINAL:
                raise TicketConflict(f"ticket {ticket_id} is {ticket.state}")
            self.conn.execute(
                "UPDATE tickets SET acknowledged_at = ?, acknowledged_by = ?, updated_at = ? "
                "WHERE id = ?",
                (at, by, at, ticket_id),
            )
            self.add_event(ticket_id, at, EventKind.ACKNOWLEDGED, by, note=note)
        acked = self.ticket(ticket_id)
        assert acked is not None
        return acked

    def ticket(self, ticket_id: int) -> Ticket | None:
        row = self.conn.execute(
            f"SELECT {_TICKET_COLS} FROM tickets WHERE id = ?", (ticket_id,)
        ).fetchone()
        return _ticket(row) if row else None

    def tickets(self, *, open_only: bool = False, limit: int = 1000) -> list[Ticket]:
        where = f"WHERE {_OPEN_CLAUSE}" if open_only else ""
        rows = self.conn.execute(
            f"SELECT {_TICKET_COLS} FROM tickets {where} ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_ticket(r) for r in rows]

    def count_open_tickets(self) -> int:
        return int(
            self.conn.execute(f"SELECT COUNT(*) FROM tickets WHERE {_OPEN_CLAUSE}").fetchone()[0]
        )

    def events(self, ticket_id: int) -> list[TicketEvent]:
        rows = self.conn.execute(
            "SELECT id, ticket_id, at, kind, actor, level, value, note FROM ticket_events "
            "WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        ).fetchall()
        return [
            TicketEvent(r[0], r[1], r[2], r[3], r[4], Level(r[5]) if r[5] else None, r[6], r[7])
            for r in rows
        ]
