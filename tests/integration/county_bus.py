"""The county bus for the integration tests: a real 3-node NATS JetStream cluster and a
throwaway PostgreSQL (gateway/devtools/cluster.py and pg.py, shared with the bench), the
county service run as `stationgw county -c county.toml` processes, and what the tests
read back from PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import psycopg
import pytest

from gateway.devtools.cluster import NatsCluster, free_port
from gateway.devtools.pg import ThrowawayPostgres

STATIONGW = str(Path(sys.executable).parent / "stationgw")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    c = NatsCluster(tmp_path / "nats", 3, mqtt=True)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[ThrowawayPostgres]:
    p = ThrowawayPostgres(tmp_path / "pg")
    try:
        p.init()
        p.start()
        yield p
    finally:
        p.remove()


def county_toml(
    cluster: NatsCluster, pg: ThrowawayPostgres, stations: list[str], *, max_deliver: int = 5
) -> str:
    servers = ", ".join(f'"{u}"' for u in cluster.urls)
    known = "".join(f'[[stations]]\nid = "{s}"\nname = "站 {s}"\n' for s in stations)
    return (
        '[county]\nname = "测试县应急管理局"\n'
        f"{known}"
        f"[nats]\nservers = [{servers}]\nmax_deliver = {max_deliver}\n"
        f'[postgres]\ndsn = "{pg.dsn}"\n'
        f'[http]\nhost = "127.0.0.1"\nport = {free_port()}\n'
    )


class CountyProcess:
    """One `stationgw county -c` instance."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [STATIONGW, "county", "-c", str(self.config), "--http-port", str(self.http_port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def health(self) -> dict[str, Any] | None:
        """GET /api/health of this instance (None while it does not answer)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/api/health", timeout=2
            ) as r:
                out: dict[str, Any] = json.load(r)
                return out
        except OSError:
            return None

    def consuming(self) -> bool:
        h = self.health()
        return bool(h and h["consumer"] and h["consumer"]["nats_connected"])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_stream(urls: list[str], name: str = "COUNTY") -> None:
    """Until the county service made the stream and it has a leader."""

    async def check() -> bool:
        nc = await nats.connect(servers=urls)
        try:
            info = await nc.jetstream().stream_info(name)
            return info.cluster is not None and info.cluster.leader is not None
        except nats.errors.Error:
            return False
        finally:
            await nc.close()

    until(lambda: asyncio.run(check()), 120, f"stream {name}")


def query(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


def scalar(dsn: str, sql: str, *args: Any) -> Any:
    rows = query(dsn, sql, *args)
    return rows[0][0] if rows else None


def readings_of(dsn: str, station: str) -> int:
    try:
        return int(scalar(dsn, "SELECT count(*) FROM readings WHERE station = %s", station))
    except psycopg.errors.UndefinedTable:
        return 0
    except psycopg.OperationalError:
        return -1


def until(what: Callable[[], bool], limit_s: float = 120, why: str = "") -> None:
    """Wait (the deadline only stops a hung test; it asserts nothing about time)."""
    deadline = time.monotonic() + limit_s
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {limit_s} s: {why}")
        time.sleep(0.1)


def lost_and_duplicates(dsn: str, station: str, n: int) -> tuple[int, int]:
    """Of the `n` readings `station` sent: how many are not stored, and how many series
    points are stored twice."""
    have = scalar(dsn, "SELECT count(DISTINCT seq) FROM readings WHERE station = %s", station)
    dups = scalar(
        dsn,
        "SELECT count(*) FROM (SELECT 1 FROM readings WHERE station = %s "
        "GROUP BY device, metric, ts HAVING count(*) > 1) d",
        station,
    )
    return n - int(have), int(dups)
