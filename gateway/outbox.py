"""The uplinks' outbox: what goes to the county, in commit order, in the station database.

One table, one sequence number per row (`seq`, never reused). Readings are added by the
ingest commit (`add_readings`, one executemany per batch); ticket events and device health
changes by triggers (migration 5) in the same transaction as the row they carry, so what
is committed is in the outbox and nothing else is. Each uplink has a cursor: the highest
seq its far side confirmed. It reads rows after its cursor, sends them in order and moves
the cursor when the far side confirms. Rows every uplink confirmed are deleted (`prune`).

The outbox is bounded by a disk budget: when its estimated size passes the budget, the
oldest readings are deleted (never ticket events or health), each uplink's `dropped`
counts the rows it lost, and the loss is logged as an error and shown in `/api/uplinks`.

Plain functions on a sqlite3 connection: writes run on the writer thread inside its
transactions, reads on an uplink's own read-only connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.model import Reading

log = logging.getLogger("stationgw.outbox")

READING, EVENT, HEALTH = "r", "e", "h"
ROW_OVERHEAD = 24  # bytes a row costs beyond its values (rowid, record header, page slack)

_INSERT = "INSERT INTO outbox (kind, device, metric, ts, value, flags) VALUES ('r', ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    kind: str  # READING, EVENT, HEALTH
    device: str | None
    metric: str | None
    ts: int | None
    value: float | None
    flags: int | None
    body: str | None  # JSON (events, health)

    def json(self) -> dict[str, object]:
        out: dict[str, object] = json.loads(self.body) if self.body else {}
        return out


@dataclass(frozen=True, slots=True)
class Cursor:
    name: str
    confirmed: int
    dropped: int
    dropped_at: int | None


@dataclass(frozen=True, slots=True)
class Status:
    newest: int  # highest seq ever written
    rows: int
    est_bytes: int
    cursors: tuple[Cursor, ...]

    def backlog(self, cursor: Cursor) -> int:
        return max(0, self.newest - cursor.confirmed)


def enabled(conn: sqlite3.Connection) -> bool:
    """The outbox is filled only while an uplink is configured (has a cursor)."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM uplink_cursors)").fetchone()[0])


def add_readings(conn: sqlite3.Connection, readings: Sequence[Reading]) -> None:
    """The ingest commit's call: the batch's new readings, in the same transaction."""
    if readings and enabled(conn):
        conn.executemany(_INSERT, [(r.device, r.metric, r.ts, r.value, r.flags) for r in readings])


def newest(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    return int(row[0]) if row else 0


def configure(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    """Cursors for the configured uplinks: a new one starts at the newest row (it sends
    what is committed from now on); one no longer configured is removed with its cursor.
    Call inside a transaction."""
    wanted = set(names)
    top = newest(conn)
    for (name,) in conn.execute("SELECT name FROM uplink_cursors").fetchall():
        if name not in wanted:
            conn.execute("DELETE FROM uplink_cursors WHERE name = ?", (name,))
    for name in sorted(wanted):
        conn.execute(
            "INSERT OR IGNORE INTO uplink_cursors (name, confirmed) VALUES (?, ?)", (name, top)
        )
    if not wanted:
        conn.execute("DELETE FROM outbox")


def cursors(conn: sqlite3.Connection) -> tuple[Cursor, ...]:
    rows = conn.execute(
        "SELECT name, confirmed, dropped, dropped_at FROM uplink_cursors ORDER BY name"
    ).fetchall()
    return tuple(Cursor(str(n), int(c), int(d), a) for n, c, d, a in rows)


def cursor(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT confirmed FROM uplink_cursors WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise KeyError(f"uplink {name!r} has no cursor")
    return int(row[0])


def confirm(conn: sqlite3.Connection, name: str, seq: int) -> None:
    """The far side confirmed every row up to `seq` (a cursor never moves back)."""
    conn.execute(
        "UPDATE uplink_cursors SET confirmed = MAX(confirmed, ?) WHERE name = ?", (seq, name)
    )


def fetch(conn: sqlite3.Connection, after: int, limit: int) -> list[Row]:
    rows = conn.execute(
        "SELECT seq, kind, device, metric, ts, value, flags, body FROM outbox "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    return [Row(*r) for r in rows]


def prune(conn: sqlite3.Connection, chunk: int = 50_000) -> int:
    """Delete up to `chunk` rows every uplink confirmed; return how many went."""
    row = conn.execute("SELECT MIN(confirmed) FROM uplink_cursors").fetchone()
    if row[0] is None:
        return 0
    cur = conn.execute(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq <= ? "
        "ORDER BY seq LIMIT ?)",
        (int(row[0]), chunk),
    )
    return cur.rowcount


def status(conn: sqlite3.Connection) -> Status:
    rows = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    return Status(newest(conn), rows, rows * _row_bytes(conn), cursors(conn))


def _row_bytes(conn: sqlite3.Connection) -> int:
    """Estimated bytes of a row: the newest 1,000 rows' values plus a fixed overhead."""
    avg = conn.execute(
        "SELECT AVG(ifnull(length(device), 0) + ifnull(length(metric), 0) + "
        "ifnull(length(body), 0) + 20) FROM (SELECT * FROM outbox ORDER BY seq DESC LIMIT 1000)"
    ).fetchone()[0]
    return ROW_OVERHEAD + round(avg or 0)


def enforce_budget(conn: sqlite3.Connection, max_bytes: int, now: int) -> int:
    """Keep the outbox under its disk budget by deleting the oldest readings (to 90 % of
    it); count, per uplink, the rows it had not yet got confirmed. Return rows deleted.
    Call inside a transaction."""
    st = status(conn)
    if st.est_bytes <= max_bytes or st.rows == 0:
        return 0
    per_row = max(1, st.est_bytes // st.rows)
    excess = st.rows - (max_bytes * 9 // 10) // per_row
    doomed = conn.execute(
        "SELECT seq FROM outbox WHERE kind = 'r' ORDER BY seq LIMIT ?", (excess,)
    ).fetchall()
    if not doomed:
        return 0
    first, last = int(doomed[0][0]), int(doomed[-1][0])
    conn.execute("DELETE FROM outbox WHERE kind = 'r' AND seq BETWEEN ? AND ?", (first, last))
    for c in st.cursors:
        lost_n = sum(1 for (s,) in doomed if int(s) > c.confirmed)
        if lost_n:
            conn.execute(
                "UPDATE uplink_cursors SET dropped = dropped + ?, dropped_at = ? WHERE name = ?",
                (lost_n, now, c.name),
            )
            log.error(
                "OUTBOX FULL (budget %d bytes): %d readings (seq %d..%d) dropped before uplink "
                "%s sent them; %d dropped in all",
                max_bytes,
                lost_n,
                first,
                last,
                c.name,
                c.dropped + lost_n,
            )
    return len(doomed)
