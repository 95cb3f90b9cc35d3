"""Sequence gaps: reports a device numbered that never arrived, counted once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ingest import seq_gaps
from gateway.ingest.seq_gaps import Gap, find_gaps
from gateway.tickets.store import StationStore


@pytest.mark.parametrize(
    ("last", "reports", "mark", "gaps"),
    [
        (None, [(1, 10), (2, 20), (3, 30)], (3, 30), []),
        (None, [(5, 10), (9, 20)], (9, 20), [Gap(6, 8)]),
        ((3, 30), [(4, 40), (7, 70), (8, 80), (12, 120)], (12, 120), [Gap(5, 6), Gap(9, 11)]),
        # redelivered after a crash: older seq and older device time, nothing counted
        ((500, 5000), [(440, 4400), (441, 4410), (501, 5010)], (501, 5010), []),
        # the redelivered ones do not move the expectation back: 451..500 were stored
        ((500, 5000), [(450, 4500), (515, 5150)], (515, 5150), [Gap(501, 514)]),
        # the device restarted its numbering: newer device time, expectation follows
        ((900, 9000), [(1, 9500), (2, 9600), (4, 9700)], (4, 9700), [Gap(3, 3)]),
        ((9, 90), [(9, 90)], (9, 90), []),  # the same report twice
    ],
)
def test_find_gaps(
    last: tuple[int, int] | None,
    reports: list[tuple[int, int]],
    mark: tuple[int, int],
    gaps: list[Gap],
) -> None:
    assert find_gaps(last, reports) == (mark, gaps)


def test_record_counts_across_batches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = StationStore(tmp_path / "s.db")
    with store.transaction():
        seq_gaps.record(store, {"rg-01": [(1, 10), (2, 20)], "rg-02": [(7, 10)]}, 1000)
    with store.transaction():
        seq_gaps.record(store, {"rg-01": [(5, 50), (6, 60), (10, 100)]}, 2000)
    # pending, not yet judged: a late report may still fill them
    got = {c.device: c for c in seq_gaps.counts(store)}
    assert (got["rg-01"].missing, got["rg-01"].pending) == (0, 5)
    with store.transaction():
        assert seq_gaps.settle(store, 2000 + seq_gaps.GRACE_MS - 1) == 0
        assert seq_gaps.settle(store, 2000 + seq_gaps.GRACE_MS) == 5
    got = {c.device: c for c in seq_gaps.counts(store)}
    assert (got["rg-01"].missing, got["rg-01"].pending) == (2 + 3, 0)
    assert got["rg-01"].gaps == 2
    assert got["rg-01"].to_json()["last_gap"] == {
        "at": 2000 + seq_gaps.GRACE_MS,
        "first": 7,
        "last": 9,
    }
    assert got["rg-02"].missing == 0
    assert "rg-01: 5 report(s) never arrived (seq 3..4, 7..9)" in caplog.text
    store.close()


def test_reports_arriving_late_fill_the_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21: around a broker restart, newer reports came first and the older ones
    after them (the broker's queue, the device's resends): nothing was lost, nothing is
    reported lost."""
    store = StationStore(tmp_path / "s.db")
    with store.transaction():
        seq_gaps.record(store, {"d16": [(s, 1000 * s) for s in range(0, 787)]}, 1000)
    with store.transaction():  # after the restart: 967.. first
        seq_gaps.record(store, {"d16": [(s, 1000 * s) for s in range(967, 1200)]}, 2000)
    assert seq_gaps.counts(store)[0].pending == 180
    with store.transaction():  # then 787..966, in two batches, one of them out of order
        seq_gaps.record(store, {"d16": [(s, 1000 * s) for s in range(900, 967)]}, 3000)
        seq_gaps.record(store, {"d16": [(s, 1000 * s) for s in reversed(range(787, 900))]}, 3000)
    with store.transaction():
        assert seq_gaps.settle(store, 10**9) == 0
    c = seq_gaps.counts(store)[0]
    assert (c.missing, c.pending, c.gaps, c.last_seq) == (0, 0, 0, 1199)
    assert "never arrived" not in caplog.text
    store.close()


def test_a_partly_filled_gap_counts_what_stays_missing(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    with store.transaction():
        seq_gaps.record(store, {"d": [(1, 10), (10, 100)]}, 1000)  # 2..9 pending
        seq_gaps.record(store, {"d": [(5, 50), (3, 30)]}, 5000)  # 2, 4, 6..9 left
        assert seq_gaps.settle(store, 1000 + seq_gaps.GRACE_MS) == 1 + 1 + 4
    c = seq_gaps.counts(store)[0]
    assert (c.missing, c.gaps, c.pending) == (6, 3, 0)
    store.close()


def test_huge_jumps_and_the_largest_seq_fit(tmp_path: Path) -> None:
    """A jump beyond MAX_GAP is a renumbering; seq up to 2^63 - 1 is bookkept."""
    store = StationStore(tmp_path / "s.db")
    with store.transaction():
        seq_gaps.record(store, {"d": [(0, 10), (2**63 - 1, 20), (5, 30)]}, 1000)
        assert seq_gaps.settle(store, 10**12) == 0
    assert seq_gaps.counts(store)[0].last_seq == 5
    store.close()


@pytest.mark.parametrize(
    ("pending", "seqs", "left"),
    [
        ([Gap(2, 9, 7)], [5], [Gap(2, 4, 7), Gap(6, 9, 7)]),
        ([Gap(2, 9, 7)], [2, 9], [Gap(3, 8, 7)]),
        ([Gap(2, 2, 7)], [2], []),
        ([Gap(2, 3, 7), Gap(8, 9, 8)], [1, 3, 8, 10], [Gap(2, 2, 7), Gap(9, 9, 8)]),
    ],
)
def test_fill(pending: list[Gap], seqs: list[int], left: list[Gap]) -> None:
    assert seq_gaps.fill(pending, seqs) == left
