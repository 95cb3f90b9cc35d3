"""SQLite store: WAL, one writer connection, reader connections per thread.

Every method is synchronous; the pipeline runs writes on one dedicated thread so the
event loop never waits on the disk. `synchronous=FULL`: a committed batch survives a power
cut, which is what lets the gateway acknowledge it to the broker.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import StoreError, TicketConflict, TicketNotFound
from gateway.core.model import Level, Reading
from gateway.storage import rollups, tiers
from gateway.storage.migrations import migrate
from gateway.tickets.model import FINAL_STATES, EventKind, OpenTicket, TicketKind, TicketState
from rules.evaluator import SeriesKey

_FINAL = tuple(str(s) for s in FINAL_STATES)
# written so that it contains the partial indexes' own condition, which SQLite must see
# verbatim to use them: `state NOT IN ('closed', 'dismissed')`, then the other final states
_OPEN_CLAUSE = "state NOT IN ('closed', 'dismissed')" + "".join(
    f" AND state <> {s!r}" for s in _FINAL if s not in ("closed", "dismissed")
)


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    kind: str
    level: Level | None  # None for device faults: they have no warning colour
    state: str
    title: str
    device: str | None
    metric: str | None
    point: str | None
    rule: str | None
    value: float | None
    reason: str | None
    opened_at: int
    updated_at: int
    acknowledged_at: int | None
    acknowledged_by: str | None
    due_at: int | None = None  # deadline of the next lifecycle step
    code: str | None = None  # short code a reply (SMS, handheld) carries
    suggestion: str | None = None  # "lower:blue", "lift", "condition_cleared"

    def overdue(self, now: int) -> bool:
        return self.due_at is not None and now > self.due_at and self.state not in _FINAL

    def to_json(self, now: int | None = None) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "level": self.level.label if self.level else None,
            "state": self.state,
            "title": self.title,
            "device": self.device,
            "metric": self.metric,
            "point": self.point,
            "rule": self.rule,
            "value": self.value,
            "reason": self.reason,
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
            "due_at": self.due_at,
            "overdue": self.overdue(now) if now is not None else None,
            "code": self.code,
            "suggestion": self.suggestion,
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
    reason: str | None
    ts: int | None
    role: str | None = None
    attachments: tuple[str, ...] = ()
    channel: str | None = None

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
            "reason": self.reason,
            "ts": self.ts,
            "role": self.role,
            "attachments": list(self.attachments),
            "channel": self.channel,
        }


@dataclass(frozen=True, slots=True)
class DeviceState:
    id: str
    online: bool
    status_at: int | None
    last_seen: int | None
    last_seq: int | None

    COLUMNS = "id, online, status_at, last_seen, last_seq"  # of `devices`, for from_row

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> DeviceState:
        return cls(r[0], bool(r[1]), r[2], r[3], r[4])

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
    "id, kind, level, state, title, device, metric, point, rule, value, reason, opened_at, "
    "updated_at, acknowledged_at, acknowledged_by, due_at, code, suggestion"
)


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row[0],
        kind=row[1],
        level=Level(row[2]) if row[2] else None,
        state=row[3],
        title=row[4],
        device=row[5],
        metric=row[6],
        point=row[7],
        rule=row[8],
        value=row[9],
        reason=row[10],
        opened_at=row[11],
        updated_at=row[12],
        acknowledged_at=row[13],
        acknowledged_by=row[14],
        due_at=row[15],
        code=row[16],
        suggestion=row[17],
    )


def hold_shared(path: Path) -> int:
    """A shared flock on the database file for as long as a writer has it open: a restore
    (`stationgw restore`) takes it exclusively and so refuses while a gateway runs."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"{path}: a restore is replacing this database; try again") from None
    return fd


class Store:
    """One connection to the station database. Not shared between threads."""

    def __init__(self, path: Path, *, writer: bool = True) -> None:
        self.path = path
        self._lock_fd: int | None = None
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
                self._lock_fd = hold_shared(path)
                # a new database frees the pages of deleted data back to the disk (the disk
                # guard's incremental_vacuum); no effect on a database that has tables
                self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
                migrate(self.conn)  # before foreign keys: migrations may rebuild tables
                self.conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as e:
            if self._lock_fd is not None:  # a writer that failed to open holds nothing
                os.close(self._lock_fd)
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"{path}: cannot open database: {e}") from e
            raise
        self._series: dict[tuple[str, str], int] = {}
        self.chunk_index = tiers.ChunkIndex()

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the shared lock
            self._lock_fd = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._series.clear()  # ids handed out inside the transaction are gone
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
        insert is the cost, not the Python loop. A reading for a day already compacted into
        a chunk is checked against the chunk first, so it is stored once there too.
        """
        new: list[Reading] = []
        cur = self.conn.cursor()
        series = self._series
        index = self.chunk_index
        index.refresh(self.conn)
        compacted = index.days
        in_chunk: dict[tuple[int, int], set[int]] = {}
        for r in readings:
            sid = series.get((r.device, r.metric)) or self.series_id(r.device, r.metric)
            if compacted:
                day = (sid, r.ts // tiers.DAY_MS)
                if day in compacted:
                    known = in_chunk.get(day)
                    if known is None:
                        known = in_chunk[day] = tiers.chunk_ts(self.conn, *day)
                    if r.ts in known:
                        continue
            cur.execute(_INSERT_READING, (sid, r.ts, r.value, r.flags))
            if cur.rowcount == 1:
                new.append(r)
        return new

    def record_rollups(self, new: Iterable[Reading]) -> None:
        """Add the readings just stored as new to their hourly buckets (same transaction);
        minutes and days are derived from what is stored (gateway/rollups.py)."""
        sids = self._series
        rollups.record(
            self.conn,
            rollups.aggregate((sids[(r.device, r.metric)], r.ts, r.value, r.flags) for r in new),
        )

    def known_series_id(self, device: str, metric: str) -> int | None:
        sid = self._series.get((device, metric))
        if sid is None:
            row = self.conn.execute(
                "SELECT id FROM series WHERE device = ? AND metric = ?", (device, metric)
            ).fetchone()
            sid = int(row[0]) if row else None
        return sid

    def readings(
        self, device: str, metric: str, start: int, end: int, limit: int = 100_000
    ) -> list[tuple[int, float, int]]:
        """(ts, value, flags) for start <= ts < end, oldest first: raw rows and chunks."""
        sid = self.known_series_id(device, metric)
        if sid is None:
            return []
        return tiers.read(self.conn, sid, start, end, limit)

    def readings_by_id(
        self, series_id: int, start: int, end: int, limit: int = 100_000
    ) -> list[tuple[int, float, int]]:
        return tiers.read(self.conn, series_id, start, end, limit)

    def latest(self) -> dict[tuple[str, str], tuple[int, float, int]]:
        """Newest reading of every series: (device, metric) -> (ts, value, flags)."""
        rows = self.conn.execute(
            "SELECT s.device, s.metric, r.ts, r.value, r.flags FROM series s "
            "JOIN readings r ON r.series_id = s.id AND r.ts = "
            "(SELECT MAX(ts) FROM readings WHERE series_id = s.id)"
        ).fetchall()
        out = {(d, m): (int(t), float(v), int(f)) for d, m, t, v, f in rows}
        # a series whose newest readings are all compacted (silent for days)
        for sid, d, m in self.conn.execute(
            "SELECT id, device, metric FROM series s WHERE NOT EXISTS "
            "(SELECT 1 FROM readings WHERE series_id = s.id)"
        ).fetchall():
            p = tiers.newest_in_chunks(self.conn, sid)
            if p is not None:
                out[(d, m)] = p
        return out

    def count_readings(self) -> int:
        """Readings stored, raw rows and compacted points."""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM readings) + (SELECT COALESCE(SUM(count), 0) FROM chunks)"
        ).fetchone()
        return int(row[0])

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
        rows = self.conn.execute(f"SELECT {DeviceState.COLUMNS} FROM devices ORDER BY id")
        return [DeviceState.from_row(r) for r in rows]

    def device(self, device_id: str) -> DeviceState | None:
        r = self.conn.execute(
            f"SELECT {DeviceState.COLUMNS} FROM devices WHERE id = ?", (device_id,)
        ).fetchone()
        return DeviceState.from_row(r) if r else None

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

    def rule_state(self) -> list[tuple[SeriesKey, str]]:
        rows = self.conn.execute("SELECT rule, device, metric, data FROM rule_state").fetchall()
        return [((r, d, m), data) for r, d, m, data in rows]

    def save_rule_state(self, rows: Iterable[tuple[SeriesKey, str | None]]) -> None:
        """Upsert each key's JSON state; None deletes the key."""
        for (rule, device, metric), data in rows:
            if data is None:
                self.conn.execute(
                    "DELETE FROM rule_state WHERE rule = ? AND device = ? AND metric = ?",
                    (rule, device, metric),
                )
            else:
                self.conn.execute(
                    "INSERT INTO rule_state (rule, device, metric, data) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (rule, device, metric) DO UPDATE SET data = excluded.data",
                    (rule, device, metric, data),
                )

    def history(self, device: str, metric: str, since: int) -> list[Reading]:
        """Good (unflagged) readings of a series newer than `since`, oldest first."""
        return [
            Reading(device, metric, ts, value)
            for ts, value, flags in self.readings(device, metric, since + 1, 2**62)
            if flags == 0
        ]

    # --- tickets ----------------------------------------------------------------------

    def open_ticket_for(
        self, rule: str, device: str | None, metric: str | None, point: str | None
    ) -> OpenTicket | None:
        row = self.conn.execute(
            f"SELECT id, level FROM tickets WHERE rule = ? AND ifnull(device, '') = ? "
            f"AND ifnull(metric, '') = ? AND ifnull(point, '') = ? AND {_OPEN_CLAUSE}",
            (rule, device or "", metric or "", point or ""),
        ).fetchone()
        return OpenTicket(int(row[0]), Level(row[1]) if row[1] else None) if row else None

    def open_ticket(
        self,
        *,
        kind: TicketKind,
        level: Level | None,
        title: str,
        device: str | None,
        metric: str | None,
        point: str | None,
        rule: str | None,
        value: float | None,
        reason: str | None,
        actor: str,
        at: int,
        ts: int | None = None,
    ) -> int:
        row = self.conn.execute(
            "INSERT INTO tickets (kind, level, state, title, device, metric, point, rule, value, "
            "reason, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (
                str(kind),
                int(level) if level else None,
                str(TicketState.DISCOVERED),
                title,
                device,
                metric,
                point,
                rule,
                value,
                reason,
                at,
                at,
            ),
        ).fetchone()
        ticket_id = int(row[0])
        self.add_event(
            ticket_id, at, EventKind.OPENED, actor, level=level, value=value, reason=reason, ts=ts
        )
        return ticket_id

    def open_hazard(
        self,
        *,
        level: Level,
        title: str,
        device: str | None,
        metric: str | None,
        actor: str,
        at: int,
        ref: str,
        value: float | None = None,
        note: str | None = None,
    ) -> tuple[int, bool]:
        """Open a hazard ticket reported directly (handheld, alarm panel): rule NULL, the
        reporter as the event's actor. `ref` is the report's own id: a resent report
        returns the ticket it opened, (id, False), and opens none."""
        row = self.conn.execute(
            "SELECT ticket_id FROM hazard_refs WHERE ref = ?", (ref,)
        ).fetchone()
        if row is not None:
            return int(row[0]), False
        row = self.conn.execute(
            "INSERT INTO tickets (kind, level, state, title, device, metric, rule, value, "
            "opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?) RETURNING id",
            (
                str(TicketKind.HAZARD),
                int(level),
                str(TicketState.DISCOVERED),
                title,
                device,
                metric,
                value,
                at,
                at,
            ),
        ).fetchone()
        ticket_id = int(row[0])
        self.conn.execute(
            "INSERT INTO hazard_refs (ref, ticket_id) VALUES (?, ?)", (ref, ticket_id)
        )
        self.add_event(ticket_id, at, EventKind.OPENED, actor, level=level, value=value, note=note)
        return ticket_id, True

    def raise_ticket(
        self,
        ticket_id: int,
        level: Level,
        title: str,
        value: float | None,
        reason: str,
        actor: str,
        at: int,
        ts: int | None = None,
    ) -> None:
        self.conn.execute(
            "UPDATE tickets SET level = ?, title = ?, value = ?, reason = ?, updated_at = ? "
            "WHERE id = ?",
            (int(level), title, value, reason, at, ticket_id),
        )
        self.add_event(
            ticket_id, at, EventKind.RAISED, actor, level=level, value=value, reason=reason, ts=ts
        )

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
        reason: str | None = None,
        ts: int | None = None,
        role: str | None = None,
        attachments: Iterable[str] = (),
        channel: str | None = None,
    ) -> None:
        refs = list(attachments)
        self.conn.execute(
            "INSERT INTO ticket_events (ticket_id, at, kind, actor, level, value, note, reason, "
            "ts, role, attachments, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket_id,
                at,
                str(kind),
                actor,
                int(level) if level else None,
                value,
                note,
                reason,
                ts,
                role,
                json.dumps(refs, ensure_ascii=False) if refs else None,
                channel,
            ),
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
            "SELECT id, ticket_id, at, kind, actor, level, value, note, reason, ts, role, "
            "attachments, channel FROM ticket_events "
            "WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        ).fetchall()
        return [
            TicketEvent(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                Level(r[5]) if r[5] else None,
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                tuple(json.loads(r[11])) if r[11] else (),
                r[12],
            )
            for r in rows
        ]
