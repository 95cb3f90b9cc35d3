"""A throwaway PostgreSQL 15 for the county's tests (gateway/devtools/pg.py, as the
county's integration tests and bench use it), migrated by the county store itself."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from gateway.county.store import CountyStore
from gateway.devtools.pg import ThrowawayPostgres


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A running server; yields its conninfo (database `county`)."""
    with tempfile.TemporaryDirectory(prefix="county-pg-") as folder:
        pg = ThrowawayPostgres(Path(folder) / "pg")
        try:
            pg.init()
            pg.start()
            yield pg.dsn
        finally:
            pg.remove()


def migrate(conninfo: str, months: tuple[datetime, ...] = ()) -> None:
    """Every migration of gateway/county/schema.py, and readings partitions for `months`."""
    store = CountyStore(conninfo)
    store.migrate()
    with store.connect() as conn:
        store.ensure_partitions(conn, [(m.year, m.month) for m in months])
        conn.commit()
