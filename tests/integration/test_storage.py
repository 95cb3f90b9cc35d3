"""The store with real parts: the disk guard on a real small filesystem (tmpfs), a backup
taken by the real command while ingest commits, and the running gateway's readings,
storage and restore refusal."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config.storage import StorageSection
from gateway.core.batch import Batch
from gateway.core.model import Reading
from gateway.devtools.bench.series import realistic_series
from gateway.ingest.commit import Ingestor
from gateway.storage.compaction import compact_all
from gateway.storage.retention import guard
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from tests.conftest import REPO, Gateway

pytestmark = pytest.mark.integration

DAY = 86_400_000
MIB = 2**20


def stationgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the guard's unit test covers the logic")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_guard_frees_a_real_small_filesystem(tmpfs: Path) -> None:
    now = int(time.time() * 1000) // DAY * DAY
    day0 = now - 30 * DAY
    store = StationStore(tmpfs / "station.db")
    ing = Ingestor(store, RuleSet([]))
    try:
        # 30 days of 8 series: the rows and rollups fill ~20 MiB
        for s in range(8):
            pts = realistic_series("level_m", day0, 30 * 1440, seed=s)
            for i in range(0, len(pts), 20_000):
                rs = [Reading(f"wl-{s:02d}", "level_m", t, v) for t, v, _ in pts[i : i + 20_000]]
                ing.commit(Batch(readings=rs), now=now)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with store.transaction():  # a ticket: never dropped
            store.conn.execute(
                "INSERT INTO tickets (kind, state, title, opened_at, updated_at) "
                "VALUES ('hazard', 'discovered', 'kept', 0, 0)"
            )
        full = shutil.disk_usage(tmpfs).free
        assert store.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        # a floor above what is free now: the guard must give back real space
        floor_mb = (full + 3 * MIB) / MIB
        cfg = StorageSection(min_free_mb=floor_mb, guard_keep_raw="10d")
        report = guard(store, now, cfg)
        after = shutil.disk_usage(tmpfs).free
        assert report.state == "freed", report
        assert after >= floor_mb * MIB and after > full
        assert report.dropped.raw_rows > 0
        left = store.readings("wl-00", "level_m", 0, 2**62, 1)[0][0]
        assert left > day0  # the oldest days went first
        newest = store.readings("wl-00", "level_m", now - 10 * DAY, 2**62, 10**6)
        assert len(newest) == 10 * 1440  # nothing newer than guard_keep_raw
        assert store.conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 1
        # compaction on the same filesystem: what is left becomes chunks
        compact_all(store, now, 2 * DAY)
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()


def test_backup_while_ingest_commits_restores_consistent(tmp_path: Path) -> None:
    db = tmp_path / "data" / "station.db"
    committed = [0]
    stop = threading.Event()
    t0 = 1_780_000_000_000

    def ingest() -> None:  # the writer's own thread, as in the gateway
        store = StationStore(db)
        ing = Ingestor(store, RuleSet([]))
        n = 0
        try:
            while not stop.is_set():
                rs = [Reading("rg-01", "rain_mm", t0 + (n + i) * 1000, 0.5) for i in range(500)]
                ing.commit(Batch(readings=rs), now=t0)
                n += 500
                committed[0] = n
        finally:
            store.close()

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        while committed[0] < 20_000:
            assert writer.is_alive(), "the ingest thread died"
            time.sleep(0.01)
        before = committed[0]
        out = stationgw("backup", str(tmp_path / "b.db"), "--db", str(db))
        after = committed[0]
    finally:
        stop.set()
        writer.join()
    assert out.returncode == 0, out.stderr
    restored = tmp_path / "r" / "station.db"
    res = stationgw("restore", str(tmp_path / "b.db"), "--db", str(restored))
    assert res.returncode == 0, res.stderr
    conn = sqlite3.connect(restored)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (count,) = conn.execute("SELECT COUNT(*) FROM readings").fetchone()
        (rolled,) = conn.execute("SELECT SUM(count) FROM rollups WHERE res = 3600000").fetchone()
    finally:
        conn.close()
    assert before <= count <= after and count % 500 == 0  # whole transactions only
    assert rolled == count  # the rollups of exactly those readings


def test_running_gateway_readings_storage_export_and_restore_refusal(gateway: Gateway) -> None:
    now = int(time.time() * 1000)
    day0 = now // DAY * DAY - 6 * DAY
    minutes = (now - day0) // 60_000 - 5
    gateway.db.parent.mkdir(parents=True)
    store = StationStore(gateway.db)
    ing = Ingestor(store, RuleSet([]))
    points = realistic_series("rain_mm", day0, minutes, seed=11)
    for i in range(0, len(points), 5000):
        rs = [Reading("rg-01", "rain_mm", t, v) for t, v, _ in points[i : i + 5000]]
        ing.commit(Batch(readings=rs), now=now)
    store.close()
    gateway.start()  # its storage jobs compact the older days at once
    api = gateway.api("viewer", timeout=30)
    deadline = time.monotonic() + 30
    while True:
        health = api.get("/api/storage").json()
        if health["last_compaction"] is not None:
            break
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    assert health["chunks"]["series_days"] >= 4
    assert health["chunks"]["bytes_per_point"] <= 3
    assert health["chunks"]["points"] + health["raw"]["rows"] == len(points)
    assert health["guard_state"] in ("ok", "low") and health["free_bytes"] > 0
    q = {"device": "rg-01", "metric": "rain_mm", "from": day0, "to": now}
    raw = api.get("/api/readings", params={**q, "limit": 100_000}).json()
    assert raw["resolution"] == "raw"
    assert [(p["ts"], p["value"], p["flags"]) for p in raw["points"]] == points
    chart = api.get("/api/readings", params={**q, "points": 800}).json()
    assert chart["resolution"] == "1h"
    total = sum(p["count"] for p in chart["points"])
    assert total == len(points)
    first = chart["points"][0]
    assert set(first) == {"ts", "value", "min", "max", "sum", "count"}
    multi = api.get(
        "/api/readings/multi",
        params=[("series", "rg-01/rain_mm"), ("series", "rg-02/rain_mm"), ("from", day0),
                ("to", now), ("points", 800)],
    ).json()  # fmt: skip
    assert multi["resolution"] == "1h"
    assert multi["series"][0]["points"] == chart["points"] and multi["series"][1]["points"] == []
    bad = api.get("/api/readings/multi", params={"series": "nodevice"})
    assert bad.status_code == 422 and "DEVICE/METRIC" in bad.text
    # the database is held: a restore refuses and names why
    backup = gateway.db.parent / "b.db"
    assert stationgw("backup", str(backup), "-c", str(gateway.config)).returncode == 0
    res = stationgw("restore", str(backup), "-c", str(gateway.config))
    assert res.returncode == 1 and "running gateway" in res.stderr
    # export reads across both tiers, with the station's time zone
    exp = stationgw(
        "export", "-c", str(gateway.config), "--device", "rg-01", "--metric", "rain_mm",
        "--from", str(day0), "--to", str(now),
    )  # fmt: skip
    assert exp.returncode == 0, exp.stderr
    lines = exp.stdout.splitlines()
    assert lines[0].startswith("ts_ms,time_utc,time_local (Asia/Shanghai)")
    assert len(lines) == len(points) + 1
    api.close()
    gateway.stop()
    res = stationgw("restore", str(backup), "-c", str(gateway.config))
    assert res.returncode == 0, res.stderr
