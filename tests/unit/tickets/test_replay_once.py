"""The same reading delivered 1,000 times, and the same crossing replayed after a restart:
exactly one ticket, one call per responder (real SQLite, a restart = a new Ingestor)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gateway.core.batch import Batch
from gateway.core.model import Reading
from gateway.tickets.records import read_calls
from tests.unit.tickets.loop_helpers import MIN, T0
from tests.unit.tickets.test_calls import gateway

CROSSING = [Reading("rg-01", "rain_mm", T0, 1.0), Reading("rg-01", "rain_mm", T0 + MIN, 9.0)]


def test_a_reading_1000_times_and_its_crossing_after_a_restart_make_one_ticket(
    tmp_path: Path,
) -> None:
    ing = gateway(tmp_path)
    ing.commit(Batch(readings=list(CROSSING)), now=T0 + MIN)  # orange: point and duty called
    for i in range(1000):  # the crossing reading again and again (redeliveries)
        out = ing.commit(Batch(readings=[CROSSING[1]]), now=T0 + MIN + i)
        assert out.new == [] and out.duplicates == 1 and out.tickets == []
    ing.commit(Batch(readings=[CROSSING[1]] * 1000), now=T0 + 2 * MIN)  # in one batch too
    ing.tick(T0 + 3 * MIN)  # before the orange deadline (10 min): nothing more
    ing.store.close()

    again = gateway(tmp_path)  # a restart, then the whole crossing replayed
    out = again.commit(Batch(readings=list(CROSSING)), now=T0 + 4 * MIN)
    assert out.new == [] and out.transitions == ()
    again.tick(T0 + 5 * MIN)

    tickets = again.store.tickets()
    # one hazard ticket for the rule, one warning for the point: no more of either
    assert sorted(t.kind for t in tickets) == ["hazard", "warning"]
    [warning] = [t for t in tickets if t.kind == "warning"]
    calls = Counter(c.person for c in read_calls(again.store, warning.id))
    assert calls == {"li": 1, "zhao": 1}  # the point's grid member and the duty officer
    again.store.close()
