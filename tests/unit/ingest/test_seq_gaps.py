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
    got = {c.device: c for c in seq_gaps.counts(store)}
    assert got["rg-01"].missing == 2 + 3
    assert got["rg-01"].gaps == 2
    assert got["rg-01"].to_json()["last_gap"] == {"at": 2000, "first": 7, "last": 9}
    assert got["rg-02"].missing == 0
    assert "rg-01: 5 report(s) never arrived (seq 3..4, 7..9)" in caplog.text
    store.close()
