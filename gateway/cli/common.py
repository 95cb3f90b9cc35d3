"""What every command shares: where a station's database is, and how a time is read."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import stored
from gateway.config.station import Config, load_config

DEFAULT_DATA = Path("station-data")
DB_NAME = "station.db"


def db_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", type=Path, help=f"data folder holding {DB_NAME}")
    g.add_argument("--db", type=Path, help="path of the station database")
    g.add_argument("-c", "--config", type=Path, help="the database named by this station file")


def database_path(args: argparse.Namespace) -> tuple[Path, Config | None]:
    """Every command finds a station's database the same way: --db, --data or -c; the
    station file is -c's, else the one the gateway stored in the database."""
    if getattr(args, "config", None):
        cfg = load_config(args.config)
        return cfg.database.path, cfg
    db = (
        args.db
        if getattr(args, "db", None)
        else (getattr(args, "data", None) or DEFAULT_DATA) / DB_NAME
    )
    return db, stored_config(db)


def stored_config(db: Path) -> Config | None:
    """The station file the gateway stored in its database, if it did."""
    found = stored.load(db)
    return found[0] if found else None


def station_time(text: str, tz: str) -> int:
    """UTC epoch milliseconds or ISO 8601; a time or date without an offset is station
    time ("2026-07-01" is its midnight there)."""
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (epoch ms or ISO 8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return int(dt.timestamp() * 1000)
