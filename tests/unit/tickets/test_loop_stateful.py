"""A hypothesis state machine of the ticket and warning loop with restarts between steps:
readings (new and redelivered), time passing, acknowledgements and restarts in any order.
Its invariants hold after every step of at least 2,000 generated runs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gateway.core.batch import Batch
from gateway.core.errors import TicketError
from gateway.core.model import Reading
from gateway.ingest.commit import Ingestor
from gateway.tickets.records import read_calls
from tests.unit.tickets.loop_helpers import MIN, T0
from tests.unit.tickets.test_calls import gateway

VALUES = [0.0, 1.0, 3.0, 6.0, 9.0, 13.0]  # none, blue, blue, yellow, orange, red
PHONES = ["13800000001", "13800000002", "13800000004", "13800000006"]  # li zhou he zhao
RUNS = 2000
STATS = Counter[str]()


class Loop(RuleBasedStateMachine):
    ing: Ingestor

    @initialize()
    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="loop-", dir=_ram()))
        self.ing = gateway(self.dir)
        self.now = T0
        self.sent: list[Reading] = []
        self.restarts = 0

    def teardown(self) -> None:
        STATS["runs"] += 1
        if hasattr(self, "ing"):
            STATS["restarts"] += self.restarts
            self.ing.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(value=st.sampled_from(VALUES), minutes=st.integers(0, 20))
    def reading(self, value: float, minutes: int) -> None:
        self.now += minutes * MIN + 1
        r = Reading("rg-01", "rain_mm", self.now, value)
        self.sent.append(r)
        self.ing.commit(Batch(readings=[r]), now=self.now)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        r = data.draw(st.sampled_from(self.sent))
        out = self.ing.commit(Batch(readings=[r] * 3), now=self.now)
        assert out.new == [] and out.transitions == () and out.tickets == []

    @rule(minutes=st.integers(1, 90))
    def time_passes(self, minutes: int) -> None:
        self.now += minutes * MIN
        self.ing.tick(self.now)

    @rule(phone=st.sampled_from(PHONES))
    def acknowledge(self, phone: str) -> None:
        desk = self.ing.desk
        assert desk is not None
        for t in self.ing.store.tickets(open_only=True):
            if t.kind == "warning":
                with contextlib.suppress(TicketError):  # already acknowledged: refused
                    desk.acknowledge(t.id, phone, "sms", None, self.now)

    @rule()
    def restart(self) -> None:
        self.ing.store.close()
        self.ing = gateway(self.dir)
        self.restarts += 1

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def one_open_ticket_per_series_and_point(self) -> None:
        open_ = [
            t for t in self.ing.store.tickets(open_only=True) if t.kind in ("hazard", "warning")
        ]
        keys = Counter((t.kind, t.rule if t.kind == "hazard" else t.point) for t in open_)
        assert all(n == 1 for n in keys.values()), keys

    @invariant()
    def a_held_level_has_its_warning_at_or_above_it(self) -> None:
        held = self.ing.point_level("slope")
        warnings = [t for t in self.ing.store.tickets(open_only=True) if t.kind == "warning"]
        if held is not None:
            assert len(warnings) == 1, (held, warnings)
            assert warnings[0].level is not None and warnings[0].level >= held

    @invariant()
    def each_call_once_and_none_after_an_acknowledgement_but_for_a_raise(self) -> None:
        for t in self.ing.store.tickets():
            calls = read_calls(self.ing.store, t.id)
            # the top of the chain is called again at each deadline: once each time
            keys = Counter((c.round, c.step, c.person, c.why, c.called_at) for c in calls)
            assert all(n == 1 for n in keys.values()), keys
            if t.acknowledged_at is not None:
                late = [
                    c for c in calls if c.called_at > t.acknowledged_at and c.why == "escalated"
                ]
                assert late == [], late

    @invariant()
    def readings_stored_once(self) -> None:
        assert self.ing.store.count_readings() == len({r.ts for r in self.sent})


def _ram() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None  # fsync-free where available: faster runs


@pytest.mark.slow
def test_loop_invariants_hold_with_restarts() -> None:
    Loop.TestCase.settings = settings(
        max_examples=RUNS,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        derandomize=False,
    )
    STATS.clear()
    Loop.TestCase().runTest()
    print(f"{STATS['runs']} runs, {STATS['restarts']} restarts between steps")
    assert STATS["runs"] >= RUNS
