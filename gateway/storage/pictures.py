"""Pictures stations send (SL651 function 36): one JPEG file each under the data folder,
`pictures/<device>/<UTC observation time>.jpg`, and a row in `pictures` (migration 14).

The file is written beside its place, flushed and renamed before its row is inserted, so
a row always names a whole file; a picture sent again (same device, same observation
time) is kept once. Backups copy the files whose rows the database snapshot holds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.storage.store import Store

FOLDER = "pictures"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Picture:
    id: int
    device: str
    observed_at: int  # UTC ms
    received_at: int
    file: str  # relative to the pictures folder
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device": self.device,
            "observed_at": self.observed_at,
            "received_at": self.received_at,
            "bytes": self.bytes,
            "url": f"/api/pictures/{self.id}",
        }


_COLUMNS = "id, device, observed_at, received_at, file, bytes, sha256"


def folder(db: Path) -> Path:
    """The pictures folder of the station database `db` (beside it, in the data folder)."""
    return db.parent / FOLDER


def file_name(device: str, observed_at: int) -> str:
    t = datetime.fromtimestamp(observed_at / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{_SAFE.sub('_', device)}/{t}.jpg"


def save(
    store: Store, root: Path, device: str, observed_at: int, received_at: int, jpeg: bytes
) -> tuple[Picture, bool]:
    """Write the file and its row (in the caller's transaction); (picture, new)."""
    old = store.conn.execute(
        f"SELECT {_COLUMNS} FROM pictures WHERE device = ? AND observed_at = ?",
        (device, observed_at),
    ).fetchone()
    if old is not None:
        return Picture(*old), False
    rel = file_name(device, observed_at)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as f:
        f.write(jpeg)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    digest = hashlib.sha256(jpeg).hexdigest()
    cur = store.conn.execute(
        "INSERT INTO pictures (device, observed_at, received_at, file, bytes, sha256) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (device, observed_at, received_at, rel, len(jpeg), digest),
    )
    return Picture(
        int(cur.lastrowid or 0), device, observed_at, received_at, rel, len(jpeg), digest
    ), True


def listing(store: Store, device: str, limit: int = 100) -> list[Picture]:
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM pictures WHERE device = ? ORDER BY observed_at DESC LIMIT ?",
        (device, limit),
    ).fetchall()
    return [Picture(*r) for r in rows]


def get(store: Store, picture_id: int) -> Picture | None:
    r = store.conn.execute(
        f"SELECT {_COLUMNS} FROM pictures WHERE id = ?", (picture_id,)
    ).fetchone()
    return Picture(*r) if r else None


def counts(store: Store) -> dict[str, int]:
    """Pictures kept per device."""
    return dict(store.conn.execute("SELECT device, count(*) FROM pictures GROUP BY device"))


def copy_files(db: Path, src: Path, dst: Path) -> tuple[int, int]:
    """Copy the files the pictures rows of database `db` name from folder `src` into
    `dst` (a backup's or the data folder's); (files, bytes). A file missing from `src` is
    an error naming it: a backup must not silently lack a picture it lists."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pictures'"
        ).fetchone()
        rows = conn.execute("SELECT file, bytes FROM pictures").fetchall() if has else []
    finally:
        conn.close()
    n = size = 0
    for rel, nbytes in rows:
        source = src / rel
        if not source.is_file():
            raise FileNotFoundError(f"picture {rel} listed in {db} is missing from {src}")
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        n += 1
        size += int(nbytes)
    return n, size
