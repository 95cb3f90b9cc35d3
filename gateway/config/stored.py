"""The station file kept in the station's database (issue 17): the gateway stores the
configuration it runs with (names, grid, people, time zone, display names, the map) and
the texts of its rule files at start and on every rules reload, so that a command given
only `--data DIR` or `--db PATH` (the monthly report, a handover record, ticket
summaries, exports) reads the station as it was; `-c` still overrides.

Plain sqlite3 on the database's own connection; the table is migration 13
(gateway/storage/migrations.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.config.station import Config

SECRET_KEYS = frozenset({"password", "secret", "token"})


def redacted(data: Any) -> Any:
    """The configuration without its secrets: passwords, signing secrets and tokens
    become null, and a URL keeps only its scheme and host (robot and webhook URLs carry
    their access keys in the path or the query). What the commands read from the
    database (names, grid, people, rules, display names) needs none of them, and a
    backup or an export of the database must not hand them out."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            if k in SECRET_KEYS and isinstance(v, str):
                out[k] = None
            elif k == "url" and isinstance(v, str):
                u = urlsplit(v)
                out[k] = urlunsplit((u.scheme, u.hostname or "", "/", "", "")) if u.scheme else v
            else:
                out[k] = redacted(v)
        return out
    if isinstance(data, list):
        return [redacted(v) for v in data]
    return data


def save(conn: sqlite3.Connection, cfg: Config, rules: dict[str, str], now: int) -> None:
    """Store the station file the gateway runs with (one row, replaced), without its
    secrets (`redacted`)."""
    conn.execute(
        "INSERT INTO station_file (id, saved_at, config, rules) VALUES (1, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, "
        "config = excluded.config, rules = excluded.rules",
        (
            now,
            json.dumps(redacted(cfg.model_dump(mode="json")), ensure_ascii=False),
            json.dumps(rules, ensure_ascii=False),
        ),
    )
    if conn.in_transaction:
        conn.commit()


def load(db: Path) -> tuple[Config, dict[str, str], int] | None:
    """(config, rule texts, saved at) stored in the database at `db`, or None."""
    if not db.is_file():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT config, rules, saved_at FROM station_file WHERE id = 1"
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: a database before migration 13
        return None
    finally:
        conn.close()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row[0])
    return Config.model_validate(data), json.loads(row[1]), int(row[2])
