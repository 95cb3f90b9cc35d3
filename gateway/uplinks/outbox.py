"""The uplinks' outbox: what goes to the county, in commit order, in the station database.

Every reading, ticket event and device health change has its own sequence number (seq,
never reused). A row holds either the readings of one ingest commit (seq .. seq + n - 1,
packed into one blob by `pack_readings`; `add_readings` is one UPDATE and one INSERT per
batch, so the hot path stays cheap) or one ticket event or health change as JSON, added
by triggers (migration 5). Either way in the same transaction as what it carries: what
is committed is in the outbox and nothing else is. Each uplink has a cursor: the highest
seq its far side confirmed. It reads what comes after its cursor (`fetch`, one `Row` per
item), sends it in order and moves the cursor when the far side confirms. Rows every
uplink confirmed are deleted (`prune`).

The outbox is bounded by a disk budget: when its size passes the budget, the oldest
readings are deleted (never ticket events or health), each uplink's `dropped` counts the
readings it lost, and the loss is logged as an error and shown in `/api/uplinks`.

Plain functions on a sqlite3 connection: writes run on the writer thread inside its
transactions, reads on an uplink's own read-only connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core.model import Reading

log = logging.getLogger("stationgw.outbox")

READING, EVENT, HEALTH = "r", "e", "h"
ROW_OVERHEAD = 24  # bytes a row costs beyond its body (key, record header, page slack)


@dataclass(frozen=True, slots=True)
class Row:
    """One item of the outbox: a reading, or a ticket event or health change (body)."""

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
    newest: int  # highest seq ever handed out
    rows: int  # items held (readings, events, health changes)
    est_bytes: int
    cursors: tuple[Cursor, ...]

    def backlog(self, cursor: Cursor) -> int:
        return max(0, self.newest - cursor.confirmed)


def enabled(conn: sqlite3.Connection) -> bool:
    """The outbox is filled only while an uplink is configured (has a cursor)."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM uplink_cursors)").fetchone()[0])


_HEAD = struct.Struct("<BII")  # format version, readings, bytes of the series list


def _little(a: array[Any]) -> array[Any]:
    if sys.byteorder != "little":
        a.byteswap()
    return a


def pack_readings(readings: Sequence[Reading]) -> bytes:
    """Readings -> one blob: the series as a JSON list, then little-endian arrays of series
    index (u32), ts (i64), value (f64) and flags (i32): 24 bytes a reading, and cheap to
    make (the ingest commit makes it). Pure."""
    index: dict[tuple[str, str], int] = {}
    idx = array("I", [index.setdefault((r.device, r.metric), len(index)) for r in readings])
    keys = json.dumps(list(index), ensure_ascii=False, separators=(",", ":")).encode()
    parts = (
        _HEAD.pack(1, len(readings), len(keys)),
        keys,
        _little(idx).tobytes(),
        _little(array("q", [r.ts for r in readings])).tobytes(),
        _little(array("d", [r.value for r in readings])).tobytes(),
        _little(array("i", [r.flags for r in readings])).tobytes(),
    )
    return b"".join(parts)


def unpack_readings(blob: bytes) -> list[tuple[str, str, int, float, int]]:
    """The blob of `pack_readings` -> (device, metric, ts, value, flags), in order. Pure."""
    version, n, k = _HEAD.unpack_from(blob)
    if version != 1:
        raise ValueError(f"outbox readings format {version} is newer than this gateway")
    at = _HEAD.size
    keys = [tuple(x) for x in json.loads(blob[at : at + k])]
    at += k
    out: list[array[Any]] = []
    for code, size in (("I", 4), ("q", 8), ("d", 8), ("i", 4)):
        a = array(code)
        a.frombytes(blob[at : at + n * size])
        out.append(_little(a))
        at += n * size
    idx, ts, values, flags = out
    return [
        (keys[i][0], keys[i][1], t, v, f) for i, t, v, f in zip(idx, ts, values, flags, strict=True)
    ]


def add_readings(conn: sqlite3.Connection, readings: Sequence[Reading]) -> None:
    """The ingest commit's call: the batch's new readings, in the same transaction."""
    if not readings or not enabled(conn):
        return
    n = len(readings)
    body = pack_readings(readings)
    (seq,) = conn.execute(
        "UPDATE outbox_seq SET next = next + ? RETURNING next - ?", (n, n)
    ).fetchone()
    conn.execute("INSERT INTO outbox (seq, n, kind, body) VALUES (?, ?, 'r', ?)", (seq, n, body))


def newest(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT next - 1 FROM outbox_seq").fetchone()[0])


def configure(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    """Cursors for the configured uplinks: a new one starts at the newest item (it sends
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
    """The far side confirmed every item up to `seq` (a cursor never moves back)."""
    conn.execute(
        "UPDATE uplink_cursors SET confirmed = MAX(confirmed, ?) WHERE name = ?", (seq, name)
    )


def fetch(conn: sqlite3.Connection, after: int, limit: int) -> list[Row]:
    """Up to `limit` items with seq > `after`, in seq order."""
    start = conn.execute(
        "SELECT seq FROM outbox WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (after + 1,)
    ).fetchone()
    out: list[Row] = []
    cur = conn.execute(
        "SELECT seq, kind, body FROM outbox WHERE seq >= ? ORDER BY seq",
        (start[0] if start else after + 1,),
    )
    for seq, kind, body in cur:
        if kind == READING:
            out += [
                Row(seq + i, READING, d, m, ts, v, f, None)
                for i, (d, m, ts, v, f) in enumerate(unpack_readings(body))
                if seq + i > after
            ]
        elif seq > after:
            out.append(Row(seq, kind, None, None, None, None, None, body))
        if len(out) >= limit:
            break
    cur.close()
    return out[:limit]


def events_after(conn: sqlite3.Connection, after: int, limit: int) -> list[Row]:
    """Up to `limit` ticket events and health changes with seq > `after`, in seq order: what
    a draining uplink sends ahead of older readings."""
    return [
        Row(int(seq), str(kind), None, None, None, None, None, body)
        for seq, kind, body in conn.execute(
            "SELECT seq, kind, body FROM outbox WHERE seq > ? AND kind != 'r' ORDER BY seq LIMIT ?",
            (after, limit),
        )
    ]


def prune(conn: sqlite3.Connection, chunk: int = 200) -> int:
    """Delete up to `chunk` rows whose items every uplink confirmed; return how many."""
    row = conn.execute("SELECT MIN(confirmed) FROM uplink_cursors").fetchone()
    if row[0] is None:
        return 0
    done = int(row[0])
    cur = conn.execute(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq <= ? "
        "AND seq + n - 1 <= ? ORDER BY seq LIMIT ?)",
        (done, done, chunk),
    )
    return cur.rowcount


def status(conn: sqlite3.Connection) -> Status:
    rows, items, size = conn.execute(
        "SELECT COUNT(*), ifnull(SUM(n), 0), ifnull(SUM(length(body)), 0) FROM outbox"
    ).fetchone()
    return Status(newest(conn), int(items), int(size) + ROW_OVERHEAD * int(rows), cursors(conn))


def enforce_budget(conn: sqlite3.Connection, max_bytes: int, now: int) -> int:
    """Keep the outbox under its disk budget by deleting the oldest readings (to 90 % of
    it); count, per uplink, the readings it had not yet got confirmed. Return how many
    readings were deleted. Call inside a transaction."""
    st = status(conn)
    if st.est_bytes <= max_bytes:
        return 0
    excess = st.est_bytes - max_bytes * 9 // 10
    doomed: list[tuple[int, int]] = []
    freed = 0
    for seq, n, size in conn.execute(
        "SELECT seq, n, length(body) FROM outbox WHERE kind = 'r' ORDER BY seq"
    ):
        doomed.append((int(seq), int(n)))
        freed += int(size) + ROW_OVERHEAD
        if freed >= excess:
            break
    if not doomed:
        return 0
    conn.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq, _ in doomed])
    first, last = doomed[0][0], doomed[-1][0] + doomed[-1][1] - 1
    for c in st.cursors:
        lost = sum(max(0, min(n, seq + n - 1 - c.confirmed)) for seq, n in doomed)
        if lost:
            conn.execute(
                "UPDATE uplink_cursors SET dropped = dropped + ?, dropped_at = ? WHERE name = ?",
                (lost, now, c.name),
            )
            log.error(
                "OUTBOX FULL (budget %d bytes): %d readings (seq %d..%d) dropped before uplink "
                "%s sent them; %d dropped in all",
                max_bytes,
                lost,
                first,
                last,
                c.name,
                c.dropped + lost,
            )
    return sum(n for _, n in doomed)
