"""SQLite store: WAL, one writer connection, reader connections per thread.

Every method is synchronous; the pipeline runs writes on one dedicated thread so the
event loop never waits on the disk. `synchronous=FULL`: a committed batch survives a power
cut, which is what lets the gateway acknowledge it to the broker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import StoreError
from gateway.core.model import Reading
from gateway.storage import rollups, tiers
from gateway.storage.migrations import migrate
from rules.evaluator import SeriesKey


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


# WAL frames before the writer copies them into the database file (SQLite's default is
# 1,000). A checkpoint writes each page once however often the WAL holds it; a series' newest
# leaf, its hourly rollup row, the device and sequence rows are rewritten every minute, so
# a longer WAL writes them to flash fewer times: at a township's load (`stationgw bench`,
# township) 11,110 → 8,144 bytes per reading. 40 MB of WAL at most (it is reused, not grown).
WAL_AUTOCHECKPOINT = 10_000

_INSERT_READING = "INSERT OR IGNORE INTO readings (series_id, ts, value, flags) VALUES (?, ?, ?, ?)"


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
                # migrations checkpoint as they go and leave the WAL empty: a new database
                # on a small disk does not hold its whole schema twice
                (before,) = self.conn.execute("PRAGMA user_version").fetchone()
                self.conn.execute("PRAGMA wal_autocheckpoint = 16")
                if migrate(self.conn) != before:  # before foreign keys: may rebuild tables
                    self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
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
            self._rolled_back()
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            # a COMMIT that fails (disk full, I/O) may leave the transaction open or may
            # already have rolled it back (SQLite does for SQLITE_FULL): either way it is
            # gone, and so are the series ids handed out inside it
            self._rolled_back()
            raise

    def _rolled_back(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._series.clear()  # ids handed out inside the transaction are gone

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
        minutes and days are derived from what is stored (gateway/storage/rollups.py)."""
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
