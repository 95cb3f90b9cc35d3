"""A throwaway PostgreSQL 15 for the county's tests: initdb in a temporary folder, the
server run as `nobody` (postgres refuses root), listening on a unix socket only."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from gateway.county.schema import MIGRATIONS

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 5432  # a unix socket in its own folder: the port only names the socket file


def _as_nobody(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A running server; yields its conninfo (database `county`)."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError("PostgreSQL 15 is not installed: run the README test command")
    folder = Path(tempfile.mkdtemp(prefix="county-pg-", dir="/tmp"))
    data = folder / "data"
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            _as_nobody(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        proc = subprocess.Popen(
            _as_nobody(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(data),
                    "-k",
                    str(folder),
                    "-p",
                    str(PORT),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"host={folder} port={PORT} user=postgres"
        for _ in range(600):  # the server takes a moment; its exit is a failure
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode}")
            try:
                with psycopg.connect(base + " dbname=postgres", autocommit=True) as c:
                    c.execute("CREATE DATABASE county")
                break
            except psycopg.OperationalError:
                time.sleep(0.05)
        else:
            raise RuntimeError("postgres did not start")
        yield base + " dbname=county"
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def migrate(conninfo: str, months: tuple[datetime, ...] = ()) -> None:
    """Every migration of gateway/county/schema.py, and readings partitions for `months`
    (the store's `migrate`/`ensure_partitions` do the same in the service)."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        for sql in MIGRATIONS:
            with c.transaction():
                c.execute(sql)  # type: ignore[arg-type]
        for m in months:
            start = datetime(m.year, m.month, 1, tzinfo=UTC)
            end = datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=UTC)
            c.execute(
                f"CREATE TABLE IF NOT EXISTS readings_{m:%Y%m} PARTITION OF readings "  # type: ignore[arg-type]
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
