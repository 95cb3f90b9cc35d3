"""The storage jobs in a running gateway (compaction, retention, disk guard) and the
storage health that `GET /api/storage` shows."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from gateway.config.storage import StorageSection
from gateway.core.errors import StoreError
from gateway.storage.compaction import compact
from gateway.storage.retention import FreeBytes, disk_free, expire, guard
from gateway.storage.rollups import RESOLUTIONS
from gateway.storage.store import Store
from rules.durations import parse_duration

log = logging.getLogger("stationgw.storage")


class StorageJobs:
    """Runs every `[storage] every` on the writer thread, in short transactions."""

    def __init__(
        self,
        store: Store,
        cfg: StorageSection,
        writer: Executor,
        clock: Callable[[], int],
        free_bytes: FreeBytes = disk_free,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.writer = writer
        self.clock = clock
        self.free_bytes = free_bytes

    async def cycle(self) -> None:
        loop = asyncio.get_running_loop()
        hot = parse_duration(self.cfg.hot)
        now = self.clock()
        while True:  # a step at a time: ingest batches queue between the steps
            step = await loop.run_in_executor(self.writer, compact, self.store, now, hot, 5)
            if step.days:
                log.info(
                    "compacted %d series-days (%d points, %d bytes) in %.3f s",
                    step.days,
                    step.points,
                    step.bytes,
                    step.seconds,
                )
            if not step.more:
                break
        await loop.run_in_executor(self.writer, expire, self.store, now, self.cfg)
        await loop.run_in_executor(self.writer, guard, self.store, now, self.cfg, self.free_bytes)

    async def run(self) -> None:
        every = parse_duration(self.cfg.every) / 1000
        while True:
            try:
                await self.cycle()
            except (sqlite3.Error, StoreError, OSError) as e:
                log.error("storage jobs failed (%s); next try in %.0f s", e, every)
            await asyncio.sleep(every)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def health(store: Store, cfg: StorageSection, free_bytes: FreeBytes = disk_free) -> dict[str, Any]:
    """Sizes, points per tier, free space, the guard's last report, the last compaction."""
    conn = store.conn
    raw_rows = int(conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
    days, points, chunk_bytes = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(count), 0), COALESCE(SUM(length(data)), 0) FROM chunks"
    ).fetchone()
    per_res = dict(conn.execute("SELECT res, COUNT(*) FROM rollups GROUP BY res").fetchall())
    minute_days, minute_bytes = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(length(data)), 0) FROM rollup_chunks"
    ).fetchone()
    state = dict(conn.execute("SELECT key, value FROM storage_state").fetchall())
    (vacuum,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    db = store.path
    free = free_bytes(db.parent)
    floor = int(cfg.min_free_mb * 1024 * 1024)
    last = state.get("last_compaction")
    return {
        "database": str(db),
        "bytes": {
            "database": _size(db),
            "wal": _size(Path(f"{db}-wal")),
            "chunks": int(chunk_bytes),
            "rollup_chunks": int(minute_bytes),
        },
        "raw": {"rows": raw_rows},
        "chunks": {
            "series_days": int(days),
            "points": int(points),
            "bytes_per_point": round(chunk_bytes / points, 3) if points else None,
        },
        "rollups": {name: int(per_res.get(res, 0)) for name, res in RESOLUTIONS.items()},
        "rollup_chunks": {"series_days": int(minute_days), "bytes": int(minute_bytes)},
        "free_bytes": free,
        "floor_bytes": floor,
        "guard": json.loads(state["guard"]) if "guard" in state else None,
        "guard_state": "low" if free < floor else "ok",
        "auto_vacuum": {0: "none", 1: "full", 2: "incremental"}.get(int(vacuum), str(vacuum)),
        "last_compaction": int(last) if last else None,
        "config": cfg.model_dump(),
    }
