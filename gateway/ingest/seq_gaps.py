"""Per-device sequence gaps: reports a device numbered but the gateway never received.

Devices number their reports (`seq`, increasing by one). When a broker loses messages
(killed before it saved them, a queue limit, a subscription not yet restored), the next
report arrives with a higher number than expected: the difference is counted per device,
logged, and shown at `/api/seq-gaps`. A number at or below the last one seen counts
nothing: with an older device time it is a redelivery or a late report (the expectation
stays), with a newer device time the device restarted its numbering (the expectation
follows it).

A gap is first *pending*: reports arrive out of order around a broker restart (the
broker's queue for the gateway and the device's own resends of what the broker had not
acknowledged come in after newer reports), so a late report may still fill it. Reports
that arrive fill pending gaps; what is still missing GRACE_MS after the gap was seen is
judged lost (`settle`, from the rule timers' tick): counted, logged, shown. A jump larger
than MAX_GAP is a renumbering, not a loss (and a count that fits SQLite's integers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import groupby

from gateway.storage.store import Store

log = logging.getLogger("stationgw.seq")

GRACE_MS = 120_000  # a late report may fill a gap this long after it was seen
MAX_GAP = 1_000_000  # a larger jump is the device renumbering, not reports lost
MAX_PENDING = 1_000  # pending gaps per device; beyond, the oldest are judged at once


@dataclass(frozen=True, slots=True)
class Gap:
    first: int  # first missing seq
    last: int  # last missing seq
    at: int = 0  # gateway time it was first seen (pending gaps)

    def __str__(self) -> str:
        return f"{self.first}..{self.last}" if self.last > self.first else str(self.first)


Mark = tuple[int, int]  # (seq, device time in ms) of the newest report


def find_gaps(last: Mark | None, reports: Iterable[Mark]) -> tuple[Mark | None, list[Gap]]:
    """Pure: the newest mark after `reports` ((seq, ts) in arrival order) and the gaps."""
    gaps: list[Gap] = []
    for seq, ts in reports:
        if last is None or seq > last[0] or ts > last[1]:
            if last is not None and last[0] + 1 < seq <= last[0] + MAX_GAP:
                gaps.append(Gap(last[0] + 1, seq - 1))
            last = (seq, ts)
    return last, gaps


def fill(pending: list[Gap], seqs: Iterable[int]) -> list[Gap]:
    """Pure: the pending gaps once the reports numbered `seqs` have arrived."""
    out = pending
    for seq in seqs:
        if not any(g.first <= seq <= g.last for g in out):
            continue
        split: list[Gap] = []
        for g in out:
            if g.first <= seq <= g.last:
                if g.first < seq:
                    split.append(Gap(g.first, seq - 1, g.at))
                if seq < g.last:
                    split.append(Gap(seq + 1, g.last, g.at))
            else:
                split.append(g)
        out = split
    return out


@dataclass(frozen=True, slots=True)
class GapCount:
    device: str
    last_seq: int | None
    missing: int
    gaps: int
    last_gap_at: int | None
    last_gap_first: int | None
    last_gap_last: int | None
    pending: int = 0  # reports missing for less than the grace: a late one may come

    def to_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "last_seq": self.last_seq,
            "missing": self.missing,
            "pending": self.pending,
            "gaps": self.gaps,
            "last_gap": None
            if self.last_gap_at is None
            else {"at": self.last_gap_at, "first": self.last_gap_first, "last": self.last_gap_last},
        }


def record(store: Store, seqs: Mapping[str, list[Mark]], now: int) -> None:
    """Note the gaps of a batch as pending and fill pending ones with what arrived
    (inside the batch's transaction, on the writer thread)."""
    conn = store.conn
    for device, marks in seqs.items():
        row = conn.execute(
            "SELECT last_seq, last_ts FROM seq_gaps WHERE device = ?", (device,)
        ).fetchone()
        before = (row[0], row[1]) if row and row[0] is not None else None
        mark, gaps = find_gaps(before, marks)
        last, last_ts = mark if mark else (None, None)
        if row is None:
            conn.execute("INSERT INTO seq_gaps (device) VALUES (?)", (device,))
        conn.execute(
            "UPDATE seq_gaps SET last_seq = ?, last_ts = ? WHERE device = ?",
            (last, last_ts, device),
        )
        rows = conn.execute(
            "SELECT first, last, found_at FROM seq_pending WHERE device = ?", (device,)
        ).fetchall()
        if not rows and not gaps:
            continue
        old = [Gap(r[0], r[1], r[2]) for r in rows]
        # a report may fill a gap found in this same batch (arrival out of order)
        after = fill(old + [Gap(g.first, g.last, now) for g in gaps], (seq for seq, _ in marks))
        if after == old:
            continue
        conn.execute("DELETE FROM seq_pending WHERE device = ?", (device,))
        after.sort(key=lambda g: g.at)
        if len(after) > MAX_PENDING:  # judged at once rather than held without end
            _judge(store, device, after[:-MAX_PENDING], now)
            after = after[-MAX_PENDING:]
        conn.executemany(
            "INSERT INTO seq_pending (device, first, last, found_at) VALUES (?, ?, ?, ?)",
            [(device, g.first, g.last, g.at) for g in after],
        )


def settle(store: Store, now: int, grace_ms: int = GRACE_MS) -> int:
    """Judge the pending gaps older than the grace as lost; return how many reports."""
    conn = store.conn
    rows = conn.execute(
        "SELECT device, first, last FROM seq_pending WHERE found_at <= ? ORDER BY device, first",
        (now - grace_ms,),
    ).fetchall()
    if not rows:
        return 0
    total = 0
    for device, group in groupby(rows, key=lambda r: str(r[0])):
        gaps = [Gap(r[1], r[2]) for r in group]
        total += _judge(store, device, gaps, now)
    conn.execute("DELETE FROM seq_pending WHERE found_at <= ?", (now - grace_ms,))
    return total


def _judge(store: Store, device: str, gaps: list[Gap], now: int) -> int:
    missing = sum(g.last - g.first + 1 for g in gaps)
    g = gaps[-1]
    store.conn.execute(
        "UPDATE seq_gaps SET missing = missing + ?, gaps = gaps + ?, last_gap_at = ?, "
        "last_gap_first = ?, last_gap_last = ? WHERE device = ?",
        (missing, len(gaps), now, g.first, g.last, device),
    )
    log.warning(
        "device %s: %d report(s) never arrived (seq %s); lost before the gateway",
        device,
        missing,
        ", ".join(str(x) for x in gaps),
    )
    return missing


def counts(store: Store) -> list[GapCount]:
    rows = store.conn.execute(
        "SELECT device, last_seq, missing, gaps, last_gap_at, last_gap_first, last_gap_last, "
        "(SELECT coalesce(sum(p.last - p.first + 1), 0) FROM seq_pending p "
        "WHERE p.device = seq_gaps.device) FROM seq_gaps ORDER BY device"
    ).fetchall()
    return [GapCount(*r) for r in rows]
