"""Reports without a device time: stored once each, recognised on redelivery by `seq`.

The store's key for a reading is (device, metric, timestamp), which recognises a
redelivered report by the time the device gave it. A report without `ts` has only the
gateway's receive time, which is different at each delivery and the same for two reports
arriving in one millisecond. So the pipeline gives each untimed report of a device a
millisecond of its own (never two collapsed into one), and a report that also carries a
`seq` is remembered here as (device, seq, digest of its values) -> the time it was given.
A redelivery (same device, seq and values within WINDOW_MS) is recognised and left out
(counted with the duplicates). An untimed report whose millisecond a timed reading of the
same device already holds moves on to the next free one. A report with neither `ts` nor `seq`
cannot be recognised when redelivered: counted (`stationgw_readings_unkeyed_total`) and
said in the README.

The same seq with other values is a new report (the device restarted its numbering), and
it replaces the remembered one.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable

from gateway.core.model import Reading

# how long a seq is remembered: longer than a broker keeps a session's queue for a
# gateway that is down (persistent_client_expiration 7d in deploy/mosquitto)
WINDOW_MS = 8 * 86_400_000


def values_digest(values: Iterable[tuple[str, float]]) -> int:
    """A signed 64-bit digest of a report's values (SQLite INTEGER)."""
    h = hashlib.blake2b(digest_size=8)
    for name, value in values:
        h.update(name.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
        h.update(value.hex().encode())
        h.update(b"\0")
    return int.from_bytes(h.digest(), "big", signed=True)


def place(
    conn: sqlite3.Connection,
    readings: list[Reading],
    untimed: list[tuple[str, int | None, int, int]],
) -> list[Reading]:
    """Inside the batch's transaction: the batch's readings with redelivered untimed
    reports left out (recognised by device, seq and values) and every other untimed
    report on a millisecond no stored or timed reading of its device holds."""
    mine = {(device, ts) for device, _, _, ts in untimed}
    timed = {(r.device, r.metric, r.ts) for r in readings if (r.device, r.ts) not in mine}
    metrics: dict[tuple[str, int], list[str]] = {}
    for r in readings:
        if (r.device, r.ts) in mine:
            metrics.setdefault((r.device, r.ts), []).append(r.metric)
    drop: set[tuple[str, int]] = set()
    move: dict[tuple[str, int], int] = {}
    for device, seq, digest, ts in untimed:
        if seq is not None:
            row = conn.execute(
                "SELECT digest, ts FROM untimed_reports WHERE device = ? AND seq = ?",
                (device, seq),
            ).fetchone()
            if row is not None and row[0] == digest and row[1] > ts - WINDOW_MS:
                drop.add((device, ts))  # a redelivery: its readings were stored then
                continue
        names = metrics.get((device, ts), [])
        at = ts
        while any(_held(conn, timed, device, m, at) for m in names):
            at += 1  # a timed reading of this device holds the millisecond
        if at != ts:
            move[(device, ts)] = at
        timed.update((device, m, at) for m in names)
        if seq is not None:
            conn.execute(
                "INSERT INTO untimed_reports (device, seq, digest, ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device, seq) DO UPDATE SET digest = excluded.digest, "
                "ts = excluded.ts",
                (device, seq, digest, at),
            )
    if not drop and not move:
        return readings
    out = []
    for r in readings:
        key = (r.device, r.ts)
        if key in drop:
            continue
        out.append(r._replace(ts=move[key]) if key in move else r)
    return out


def _held(
    conn: sqlite3.Connection, timed: set[tuple[str, str, int]], device: str, metric: str, ts: int
) -> bool:
    if (device, metric, ts) in timed:
        return True
    row = conn.execute(
        "SELECT 1 FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.device = ? AND s.metric = ? AND r.ts = ?",
        (device, metric, ts),
    ).fetchone()
    return row is not None


def forget(conn: sqlite3.Connection, now: int) -> int:
    """Drop what is older than the window; return how many."""
    return conn.execute("DELETE FROM untimed_reports WHERE ts < ?", (now - WINDOW_MS,)).rowcount
