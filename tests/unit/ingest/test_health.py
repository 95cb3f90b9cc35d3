"""Device health: counters add up, silent devices go offline by their own interval."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest.health import HealthRecorder, load_health, sweep, write_deltas
from gateway.tickets.store import StationStore

T0 = 1_780_000_000_000


def test_counters_add_and_values_replace(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    rec = HealthRecorder()
    rec.count("a", "crc_errors", T0)
    rec.count("a", "crc_errors", T0 + 1)
    rec.note("a", T0 + 2, supply_v=12.1, firmware="V1")
    write_deltas(store, rec.take())
    rec.count("a", "timeouts", T0 + 3, 2)
    rec.note("a", T0 + 4, supply_v=11.9, signal=None)
    write_deltas(store, rec.take())
    h = load_health(store)["a"]
    assert (h.crc_errors, h.timeouts, h.malformed) == (2, 2, 0)
    assert (h.supply_v, h.firmware, h.signal, h.updated_at) == (11.9, "V1", None, T0 + 4)
    assert rec.take() == {}


def test_silent_device_goes_offline_and_comes_back(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    store.register_devices(["a", "b"])
    with store.transaction():
        store.device_status("a", True, T0)
        store.device_seen("a", T0, None)
    intervals = {"a": 60_000}  # b has no interval: never judged
    assert sweep(store, intervals, 3.0, T0 + 180_000, T0) == []  # exactly 3 × interval: not yet
    (gone,) = sweep(store, intervals, 3.0, T0 + 180_001, T0)
    assert (gone.id, gone.online) == ("a", False)
    assert load_health(store)["a"].offline_reason == "no data for 180.0 s (interval 60 s × 3)"
    with store.transaction():
        store.device_seen("a", T0 + 200_000, None)
    (back,) = sweep(store, intervals, 3.0, T0 + 200_001, T0)
    assert (back.id, back.online, back.status_at) == ("a", True, T0 + 200_000)
    assert load_health(store)["a"].offline_reason is None
    assert sweep(store, intervals, 3.0, T0 + 200_002, T0) == []


def test_a_restart_is_not_an_outage(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    store.register_devices(["a"])
    with store.transaction():
        store.device_status("a", True, T0)
    # the gateway started at T0 + 10 min: the device has 3 intervals from then
    assert sweep(store, {"a": 60_000}, 3.0, T0 + 600_000 + 120_000, T0 + 600_000) == []


def test_a_device_without_an_interval_comes_online_by_data_and_never_goes_silent(
    tmp_path: Path,
) -> None:
    store = StationStore(tmp_path / "s.db")
    store.register_devices(["b"])
    assert sweep(store, {}, 3.0, T0, T0) == []  # never heard from: stays offline
    with store.transaction():
        store.device_seen("b", T0 + 1_000, None)
    (up,) = sweep(store, {}, 3.0, T0 + 2_000, T0)
    assert (up.id, up.online) == ("b", True)
    assert sweep(store, {}, 3.0, T0 + 86_400_000, T0) == []  # no interval: silence not judged


def test_each_device_is_judged_by_its_own_interval(tmp_path: Path) -> None:
    """SQLite picks the candidates by the shortest interval; each one's own decides."""
    store = StationStore(tmp_path / "s.db")
    store.register_devices(["fast", "slow", "quiet"])
    with store.transaction():
        for d in ("fast", "slow"):
            store.device_status(d, True, T0)
            store.device_seen(d, T0, None)
    intervals = {"fast": 60_000, "slow": 600_000}  # "quiet" never reported: stays offline
    assert [d.id for d in sweep(store, intervals, 3.0, T0 + 180_001, T0)] == ["fast"]
    assert sweep(store, intervals, 3.0, T0 + 1_800_000, T0) == []
    assert [d.id for d in sweep(store, intervals, 3.0, T0 + 1_800_001, T0)] == ["slow"]
