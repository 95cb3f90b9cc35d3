"""Rules through the store: tickets per series, device-fault tickets, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.batch import Batch
from gateway.core.model import Reading
from gateway.ingest.commit import Ingestor
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.faults import FaultSpec
from rules.model import AccumulationRule, DeviceInfo, NoDataRule, ThresholdRule, Window
from tests.unit.rules.rules_helpers import HOUR, MIN, T0, B, O, R, Y, readings

RAIN = ThresholdRule(
    "rain", "短时强降雨", "rain_mm", "above", ((B, 2.0), (Y, 5.0), (O, 8.0), (R, 12.0))
)
DEVICES = {"rg-01": DeviceInfo("rg-01", "slope"), "rg-02": DeviceInfo("rg-02", "river")}


def open_store(tmp_path: Path) -> StationStore:
    store = StationStore(tmp_path / "t.db")
    store.register_devices(["rg-01", "rg-02"])
    return store


def feed(ing: Ingestor, rows: list[Reading]) -> None:
    for r in rows:
        ing.commit(Batch(readings=[r]), now=r.ts)


@pytest.fixture
def ingestor(tmp_path: Path) -> Ingestor:
    return Ingestor(open_store(tmp_path), RuleSet([RAIN], DEVICES))


def test_one_ticket_per_series_raised_not_reopened(ingestor: Ingestor) -> None:
    feed(ingestor, readings([0, 3, 4, 6, 2, 9, 1, 0]))
    [t] = ingestor.store.tickets()
    assert (t.kind, t.level, t.state, t.rule, t.device, t.metric, t.point) == (
        "hazard",
        O,
        "discovered",
        "rain",
        "rg-01",
        "rain_mm",
        "slope",
    )
    assert t.title == "短时强降雨 橙色 rg-01"
    assert t.opened_at == T0 + MIN
    assert t.reason == "rain_mm 9 ≥ 橙色阈值 8 / rain_mm 9 ≥ orange threshold 8"
    events = [(e.kind, e.level) for e in ingestor.store.events(t.id)]
    assert events == [
        ("opened", B),
        ("raised", Y),
        ("level_changed", B),
        ("raised", O),
        ("condition_cleared", None),
    ]


def test_each_series_gets_its_own_ticket(ingestor: Ingestor) -> None:
    feed(ingestor, readings([3], device="rg-01"))
    feed(ingestor, readings([6], device="rg-02"))
    assert sorted((t.device, t.level) for t in ingestor.store.tickets()) == [
        ("rg-01", B),
        ("rg-02", Y),
    ]


def test_a_stuck_gauge_opens_a_device_fault_ticket_and_no_hazard(tmp_path: Path) -> None:
    spec = FaultSpec(0, 50, stuck_after_ms=HOUR)
    ing = Ingestor(open_store(tmp_path), RuleSet([RAIN], DEVICES, {("rg-01", "rain_mm"): spec}))
    feed(ing, readings([6.2] * 8, step=20 * MIN))  # a yellow value, stuck for over 2 h
    kinds = sorted((t.kind, t.level, t.rule) for t in ing.store.tickets())
    # the value was real at first (yellow), then the stuck readings stop being judged
    assert kinds == [("device_fault", None, "fault:stuck"), ("hazard", Y, "rain")]
    fault = next(t for t in ing.store.tickets() if t.kind == "device_fault")
    assert fault.title.startswith("设备故障：rg-01 rain_mm")
    flags = [f for _, _, f in ing.store.readings("rg-01", "rain_mm", T0, T0 + 10 * HOUR)]
    assert flags == [0, 0, 0, 2, 2, 2, 2, 2]


def test_no_data_fault_ticket_opens_on_a_tick(tmp_path: Path) -> None:
    rule = NoDataRule("offline", "设备离线", None, 30 * MIN)
    ing = Ingestor(open_store(tmp_path), RuleSet([rule], DEVICES))
    ing.tick(T0)
    out = ing.tick(T0 + 31 * MIN)
    assert sorted(t.device for t in out.tickets) == ["rg-01", "rg-02"]
    assert {t.kind for t in out.tickets} == {"device_fault"}
    feed(ing, readings([0], start=T0 + 40 * MIN))
    [rg01] = [t for t in ing.store.tickets() if t.device == "rg-01"]
    assert [e.kind for e in ing.store.events(rg01.id)] == ["opened", "fault_cleared"]


def test_restart_in_the_middle_of_a_window_neither_forgets_nor_repeats(tmp_path: Path) -> None:
    rule = AccumulationRule("acc", "累计", "rain_mm", (Window(HOUR, ((B, 30.0), (Y, 50.0))),))
    store = open_store(tmp_path)
    ing = Ingestor(store, RuleSet([rule], DEVICES))
    feed(ing, readings([10, 10, 10, 5], step=10 * MIN))  # 35 mm: blue at minute 20
    store.close()
    # a new process: state and window come back from the database
    again = Ingestor(StationStore(tmp_path / "t.db"), RuleSet([rule], DEVICES))
    feed(again, readings([5], start=T0 + 40 * MIN))  # 40 mm: still blue, no second warning
    [t] = again.store.tickets()
    assert len(again.store.events(t.id)) == 1
    feed(again, readings([10], start=T0 + 50 * MIN))  # 50 mm in the hour: yellow, raised
    [t] = again.store.tickets()
    assert t.level == Y
    assert [e.kind for e in again.store.events(t.id)] == ["opened", "raised"]


def test_failed_transaction_rebuilds_state_from_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ing = Ingestor(store, RuleSet([RAIN], DEVICES))
    bad = Batch(readings=readings([6]), seen={"rg-01": (T0, None)})
    bad.quarantined.append(None)  # type: ignore[arg-type]  # makes the transaction fail
    with pytest.raises(AttributeError):
        ing.commit(bad, now=T0)
    assert store.count_readings() == 0
    feed(ing, readings([6]))  # the same reading again: judged again, ticket opens
    assert [t.level for t in store.tickets()] == [Y]


def test_reloading_keeps_state_of_unchanged_rules(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ing = Ingestor(store, RuleSet([RAIN], DEVICES))
    feed(ing, readings([6]))
    changed = ThresholdRule("rain", "短时强降雨", "rain_mm", "above", ((B, 2.0), (Y, 5.5)))
    ing.replace_rules(RuleSet([changed], DEVICES))
    feed(ing, readings([6.1], start=T0 + MIN))  # still yellow under the new rule: no event
    [t] = store.tickets()
    assert len(store.events(t.id)) == 1
