"""Fixtures with real parts: a Mosquitto broker and gateway processes on loopback."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Mosquitto:
    port: int
    proc: subprocess.Popen[bytes]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run the README test command (scripts/test)")
    port = free_port()
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        "max_queued_messages 1000000\n"
        "log_dest stderr\nlog_type error\nlog_type warning\n"
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield Mosquitto(port, proc)
    finally:
        proc.terminate()
        proc.wait(10)


STATION = """
[station]
id = "test"
name = "测试站"

[[villages]]
id = "v1"
name = "一村"

[[points]]
id = "p1"
name = "一号点"
village = "v1"

[[devices]]
id = "rg-01"
name = "雨量计"
kind = "rain_gauge"
point = "p1"
metrics.rain_mm = {{ unit = "mm", min = 0, max = 50 }}
metrics.battery_v = {{ unit = "V", min = 0, max = 15 }}

[[devices]]
id = "rg-02"
name = "雨量计2"
kind = "rain_gauge"
point = "p1"
metrics.rain_mm = {{ unit = "mm", min = 0, max = 50 }}
metrics.battery_v = {{ unit = "V", min = 0, max = 15 }}

[broker]
port = {broker_port}
client_id = "gw-under-test"

[database]
path = "data/station.db"

[http]
port = {http_port}

[rules]
path = "rules.toml"
"""

RULES = """
[[rules]]
id = "rain-burst"
name = "短时强降雨"
kind = "threshold"
metric = "rain_mm"
above = { blue = 2.0, yellow = 5.0, orange = 8.0, red = 12.0 }
"""


def add_user(db: Path, name: str, role: str, person: str | None = None) -> str:
    """A user straight in the station database (as `stationgw users add` does); returns
    the password, random per test."""
    from gateway.auth.users import add_user as add
    from gateway.tickets.store import StationStore

    password = secrets.token_urlsafe(12)
    store = StationStore(db)
    try:
        add(store, name, role, password, person, int(time.time() * 1000))
    finally:
        store.close()
    return password


def api(
    url: str, db: Path, role: str = "admin", name: str | None = None, **kw: Any
) -> httpx.Client:
    """An HTTP client logged in to the gateway at `url` as a new user with `role`; it
    sends the session's CSRF token with every request. Close it (`with contextlib.closing(...)`)."""
    name = name or f"{role}-{secrets.token_hex(3)}"
    password = add_user(db, name, role, kw.pop("person", None))
    client = httpx.Client(base_url=url, timeout=kw.pop("timeout", 10))
    r = client.post("/api/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    return client


@dataclass
class Gateway:
    """`stationgw run` as a real process, so tests can kill -9 it."""

    config: Path
    db: Path
    http_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None
    _viewer: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                cwd=REPO,
                env={**os.environ, **(self.env or {})},
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self._port_taken():
                return self.start()  # another process took the free port meanwhile
            assert self.proc.poll() is None, f"gateway exited: {self.log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{self.url}/api/health", timeout=1).json()
                if health["broker"]["connected"]:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"gateway did not come up: {self.log.read_text()}")

    def _port_taken(self) -> bool:
        """The HTTP port chosen free was bound by someone else first: take another one."""
        text = self.config.read_text(encoding="utf-8")
        line = f"port = {self.http_port}\n"
        if "address already in use" not in self.log.read_text() or line not in text:
            return False
        self.http_port = free_port()
        self.config.write_text(text.replace(line, f"port = {self.http_port}\n"), "utf-8")
        self.log.write_text("", encoding="utf-8")
        return True

    def api(self, role: str = "admin", name: str | None = None, **kw: Any) -> httpx.Client:
        """A client logged in as a new user with `role` (see `api`)."""
        return api(self.url, self.db, role, name, **kw)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET JSON as a viewer (a user made and logged in on first use)."""
        if self._viewer is None:
            self._viewer = self.api("viewer")
        r = self._viewer.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(20)

    def stop(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Gateway]:
    config = tmp_path / "station.toml"
    http_port = free_port()
    config.write_text(STATION.format(broker_port=mosquitto.port, http_port=http_port))
    (tmp_path / "rules.toml").write_text(RULES)
    gw = Gateway(config, tmp_path / "data" / "station.db", http_port, tmp_path / "gateway.log")
    try:
        yield gw
    finally:
        gw.stop()
