"""Per-device sequence gaps: reports a device numbered but the gateway never received.

Devices number their reports (`seq`, increasing by one). When a broker loses messages
(killed before it saved them, a queue limit, a subscription not yet restored), the next
report arrives with a higher number than expected: the difference is counted per device,
logged, and shown at `/api/seq-gaps`. A number at or below the last one seen counts
nothing: with an older device time it is a redelivery or a late report (the expectation
stays), with a newer device time the device restarted its numbering (the expectation
follows it). A gap filled later by a late report stays counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.storage.store import Store

log = logging.getLogger("stationgw.seq")


@dataclass(frozen=True, slots=True)
class Gap:
    first: int  # first missing seq
    last: int  # last missing seq

    def __str__(self) -> str:
        return f"{self.first}..{self.last}" if self.last > self.first else str(self.first)


Mark = tuple[int, int]  # (seq, device time in ms) of the newest report


def find_gaps(last: Mark | None, reports: Iterable[Mark]) -> tuple[Mark | None, list[Gap]]:
    """Pure: the newest mark after `reports` ((seq, ts) in arrival order) and the gaps."""
    gaps: list[Gap] = []
    for seq, ts in reports:
        if last is None or seq > last[0] or ts > last[1]:
            if last is not None and seq > last[0] + 1:
                gaps.append(Gap(last[0] + 1, seq - 1))
            last = (seq, ts)
    return last, gaps


@dataclass(frozen=True, slots=True)
class GapCount:
    device: str
    last_seq: int | None
    missing: int
    gaps: int
    last_gap_at: int | None
    last_gap_first: int | None
    last_gap_last: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "last_seq": self.last_seq,
            "missing": self.missing,
            "gaps": self.gaps,
            "last_gap": None
            if self.last_gap_at is None
            else {"at": self.last_gap_at, "first": self.last_gap_first, "last": self.last_gap_last},
        }


def record(store: Store, seqs: Mapping[str, list[Mark]], now: int) -> None:
    """Count the gaps of a batch (inside the batch's transaction, on the writer thread)."""
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
        missing = sum(g.last - g.first + 1 for g in gaps)
        if gaps:
            g = gaps[-1]
            conn.execute(
                "UPDATE seq_gaps SET last_seq = ?, last_ts = ?, missing = missing + ?, "
                "gaps = gaps + ?, last_gap_at = ?, last_gap_first = ?, last_gap_last = ? "
                "WHERE device = ?",
                (last, last_ts, missing, len(gaps), now, g.first, g.last, device),
            )
            log.warning(
                "device %s: %d report(s) never arrived (seq %s); lost before the gateway",
                device,
                missing,
                ", ".join(str(x) for x in gaps),
            )
        else:
            conn.execute(
                "UPDATE seq_gaps SET last_seq = ?, last_ts = ? WHERE device = ?",
                (last, last_ts, device),
            )


def counts(store: Store) -> list[GapCount]:
    rows = store.conn.execute(
        "SELECT device, last_seq, missing, gaps, last_gap_at, last_gap_first, last_gap_last "
        "FROM seq_gaps ORDER BY device"
    ).fetchall()
    return [GapCount(*r) for r in rows]
