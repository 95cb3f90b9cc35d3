"""Helpers for driver tests with real parts: an in-process gateway and socat pty pairs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Running, run_gateway
from gateway.config.station import Config, parse_config

SOCAT = shutil.which("socat")


def config(tmp_path: Path, toml: str) -> Config:
    import tomllib

    path = tmp_path / "station.toml"
    path.write_text(toml)
    return parse_config(tomllib.loads(toml), path)


@contextlib.asynccontextmanager
async def gateway(cfg: Config) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    started: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_gateway(cfg, stop, started=started))
    done, _ = await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield started.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class PtyPair:
    """`socat` joining two pseudo-terminals at fixed paths; can be killed and restarted."""

    def __init__(self, a: Path, b: Path) -> None:
        if SOCAT is None:
            pytest.fail("socat is not installed: run the README test command (scripts/test)")
        self.a, self.b = a, b
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert SOCAT is not None
        self.proc = subprocess.Popen(
            [SOCAT, f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (self.a.exists() and self.b.exists()):
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError("socat did not create its pseudo-terminals")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        for p in (self.a, self.b):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def open_b(self) -> int:
        return os.open(self.b, os.O_RDWR | os.O_NOCTTY)


async def until(check: Callable[[], Any], what: str, limit_s: float = 30.0) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {limit_s} s")
        await asyncio.sleep(0.05)


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def series(db: Path, device: str, metric: str) -> list[tuple[int, float]]:
    return [
        (int(t), float(v))
        for t, v in rows(
            db,
            "SELECT r.ts, r.value FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE s.device = ? AND s.metric = ? ORDER BY r.ts",
            device,
            metric,
        )
    ]
