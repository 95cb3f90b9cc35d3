"""`stationgw backup|restore|export`: the station database's copy (with the pictures its
rows name, in `PATH.pictures/`), its return, a series as CSV."""

from __future__ import annotations

import argparse
import csv
import fcntl
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.cli.common import database_path, station_time
from gateway.core.errors import GatewayError
from gateway.storage import pictures
from gateway.storage.migrations import MIGRATIONS
from gateway.storage.store import Store

DAY_MS = 86_400_000


def backup(db: Path, out: Path) -> int:
    """SQLite's online backup of a live database into `out` (written beside it, then
    renamed): one read transaction, so the copy is one consistent moment even while the
    gateway writes. Returns the pages copied."""
    if not db.exists():
        raise GatewayError(f"{db}: no station database here")
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        src.execute("PRAGMA busy_timeout = 5000")
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # all pages in one step: one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            (pages,) = dst.execute("PRAGMA page_count").fetchone()
        finally:
            dst.close()
    except sqlite3.Error as e:
        tmp.unlink(missing_ok=True)
        raise GatewayError(f"backup of {db} failed: {e}") from e
    finally:
        src.close()
    os.replace(tmp, out)
    return int(pages)


def picture_folder(backup_path: Path) -> Path:
    """Where a backup's pictures go: `PATH.pictures/`, beside the backup file."""
    return backup_path.with_name(backup_path.name + ".pictures")


def backup_pictures(db: Path, out: Path) -> tuple[int, int]:
    """Copy the pictures the backup `out` lists (its snapshot's rows; every row's file was
    written before the row) into `out.pictures/`; (files, bytes)."""
    dst = picture_folder(out)
    tmp = dst.with_name(dst.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        n, size = pictures.copy_files(out, pictures.folder(db), tmp)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GatewayError(f"backup of the pictures of {db} failed: {e}") from e
    shutil.rmtree(dst, ignore_errors=True)
    if n:
        os.replace(tmp, dst)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return n, size


def check_backup(path: Path) -> int:
    """A backup a restore accepts: intact, a station database, not newer than this
    version. Returns its schema version."""
    if not path.exists():
        raise GatewayError(f"{path}: no such backup")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (ok,) = conn.execute("PRAGMA integrity_check").fetchone()
        if ok != "ok":
            raise GatewayError(f"{path}: integrity check failed: {ok}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"series", "readings", "tickets"} <= tables:
            raise GatewayError(f"{path}: not a station database (no series/readings/tickets)")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.DatabaseError as e:
        raise GatewayError(f"{path}: not a readable SQLite database: {e}") from e
    finally:
        conn.close()
    if version > len(MIGRATIONS):
        raise GatewayError(f"{path}: schema {version} is newer than this stationgw knows")
    return int(version)


def restore(backup_path: Path, db: Path) -> int:
    """Copy a backup over the station database. Refuses while any writer (a running
    gateway) holds the database: writers keep a shared flock on the file, the restore
    takes it exclusively for the whole copy, so a gateway cannot start meanwhile."""
    version = check_backup(backup_path)
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(db, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GatewayError(
                f"{db}: a running gateway (or another writer) has this database open; stop it first"
            ) from None
        src = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
        dst = sqlite3.connect(db)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as e:
            raise GatewayError(f"restore into {db} failed: {e}") from e
        finally:
            dst.close()
            src.close()
        saved = picture_folder(backup_path)
        if saved.is_dir():  # the pictures the backup lists, back into the data folder
            try:
                pictures.copy_files(backup_path, saved, pictures.folder(db))
            except OSError as e:
                raise GatewayError(f"restore of the pictures from {saved} failed: {e}") from e
    finally:
        os.close(fd)
    return version


def export_rows(
    store: Store, device: str, metric: str, start: int, end: int, tz: ZoneInfo
) -> Iterator[list[Any]]:
    """CSV rows of one series, raw readings from both tiers, a day at a time."""
    yield ["ts_ms", "time_utc", f"time_local ({tz.key})", "device", "metric", "value", "flags"]
    t = start
    while t < end:
        step = min(end, (t // DAY_MS + 1) * DAY_MS)
        for ts, value, flags in store.readings(device, metric, t, step, 10_000_000):
            at = datetime.fromtimestamp(ts / 1000, UTC)
            yield [
                ts,
                at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                at.astimezone(tz).isoformat(timespec="milliseconds"),
                device,
                metric,
                repr(value),
                flags,
            ]
        t = step


def cmd_backup(args: argparse.Namespace) -> int:

    db, _ = database_path(args)
    pages = backup(db, args.path)
    n, size = backup_pictures(db, args.path)
    word = "picture" if n == 1 else "pictures"
    kept = f"; {n} {word}, {size} bytes in {picture_folder(args.path)}" if n else ""
    print(f"{args.path}: backup of {db} ({pages} pages, {args.path.stat().st_size} bytes{kept})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:

    db, _ = database_path(args)
    version = restore(args.path, db)
    print(f"{db}: restored from {args.path} (schema {version})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:

    db, cfg = database_path(args)
    tz = args.tz or (cfg.station.timezone if cfg else "Asia/Shanghai")
    start, end = station_time(args.from_, tz), station_time(args.to, tz)
    if end <= start:
        raise ValueError(f"--to ({args.to}) must be after --from ({args.from_})")
    store = Store(db, writer=False)
    out = args.out.open("w", newline="", encoding="utf-8") if args.out else None
    try:
        w = csv.writer(out or sys.stdout)
        rows = export_rows(store, args.device, args.metric, start, end, ZoneInfo(tz))
        n = -1  # the header is not a reading
        for row in rows:
            w.writerow(row)
            n += 1
    finally:
        store.close()
        if out is not None:
            out.close()
    print(f"{args.device}/{args.metric}: {n} readings", file=sys.stderr)
    return 0


def add_parsers(sub: Any, db_options: Any) -> None:
    b = sub.add_parser("backup", help="copy the station database (safe while it runs)")
    b.add_argument("path", type=Path, metavar="PATH", help="the backup file to write")
    db_options(b)
    b.set_defaults(func=cmd_backup)

    r = sub.add_parser("restore", help="put a backup back (the gateway must be stopped)")
    r.add_argument("path", type=Path, metavar="PATH", help="the backup file")
    db_options(r)
    r.set_defaults(func=cmd_restore)

    e = sub.add_parser("export", help="one series' readings as CSV (raw and compacted)")
    db_options(e)
    e.add_argument("--device", required=True)
    e.add_argument("--metric", required=True)
    e.add_argument("--from", dest="from_", required=True, metavar="T", help="ISO 8601 or UTC ms")
    e.add_argument("--to", required=True, metavar="T", help="ISO 8601 or UTC ms (exclusive)")
    e.add_argument("--format", choices=["csv"], default="csv")
    e.add_argument("--tz", help="zone of the local-time column (default: the station's)")
    e.add_argument("--out", type=Path, metavar="PATH", help="file (default: stdout)")
    e.set_defaults(func=cmd_export)
