"""The processes a bench drives: Mosquitto, mosquitto_pub/_sub, the gateway, and /proc.

Everything runs on loopback. Each process is started by the bench and stopped by it (by
its own pid), whatever happens in between.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from gateway.core.errors import GatewayError

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(GatewayError):
    """A bench step could not run (a tool missing, a process that did not come up)."""


def tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if found is None:
        package = "mosquitto" if name == "mosquitto" else "mosquitto-clients"
        raise BenchError(
            f"{name} is not installed (Debian package {package}; scripts/test installs it)"
        )
    return found


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
        time.sleep(0.02)
    raise BenchError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size in MiB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Broker:
    """Mosquitto on a free loopback port, its configuration in `folder`.

    Persistence is off (the bench does not restart the broker); the queue for an offline
    session is large so that a whole stream can wait for a consumer.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "set_tcp_nodelay true\n"  # as deploy/mosquitto: alerts are not held by Nagle
            "persistence false\n"
            "max_queued_messages 10000000\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        log = (self.folder / "mosquitto.log").open("wb")
        self.proc = subprocess.Popen([tool("mosquitto"), "-c", str(conf)], stderr=log)
        log.close()
        wait_port(self.port)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def version(self) -> str:
        out = subprocess.run(
            [tool("mosquitto"), "-h"], capture_output=True, text=True, check=False
        ).stdout
        first = out.splitlines()[0] if out else "mosquitto ?"
        return first.replace("mosquitto version ", "").strip()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


class Publisher:
    """`mosquitto_pub -q 1 -l`: one QoS 1 message per line written to its stdin.

    mosquitto_pub 2.0.11 disconnects at the end of its input without waiting for the last
    PUBACKs, and the broker drops what was in flight ("disconnected due to out of memory").
    So the bench keeps stdin open until a witness has seen the whole stream, then closes.
    """

    def __init__(self, port: int, topic: str) -> None:
        self.proc = subprocess.Popen(
            [
                tool("mosquitto_pub"),
                "-p",
                str(port),
                "-V",
                "5",
                "-q",
                "1",
                "-M",
                "1000",
                "-l",
                "-t",
                topic,
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdin is not None
        self._stdin: IO[bytes] = self.proc.stdin
        self.sent = 0

    def write_file(self, path: Path) -> threading.Thread:
        """Feed a whole file in the background; return the thread doing it."""

        def feed() -> None:
            with path.open("rb") as f:
                while chunk := f.read(1 << 16):
                    self._stdin.write(chunk)
            self._stdin.flush()

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        return t

    def write_lines(self, lines: list[bytes]) -> None:
        self._stdin.write(b"".join(lines))
        self._stdin.flush()
        self.sent += len(lines)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)


def paced(
    publisher: Publisher,
    lines: Iterable[bytes],
    rate: float,
    seconds: float,
    stop: threading.Event | None = None,
) -> int:
    """Write lines at `rate` per second for `seconds` (or until `stop`); return how many."""
    tick = 0.01
    per_tick = rate * tick
    it: Iterator[bytes] = iter(lines)
    start = time.monotonic()
    owed = 0.0
    written = 0
    ticks = 0
    while True:
        ticks += 1
        target = start + ticks * tick
        if target - start > seconds or (stop is not None and stop.is_set()):
            break
        owed += per_tick
        n = int(owed)
        owed -= n
        chunk = [line for _, line in zip(range(n), it, strict=False)]
        if chunk:
            publisher.write_lines(chunk)
            written += len(chunk)
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return written


def _session_sub(port: int, client_id: str, topic: str, *extra: str) -> list[str]:
    """mosquitto_sub on a persistent MQTT 5 session (QoS 1, an hour's expiry)."""
    return [
        tool("mosquitto_sub"), "-p", str(port), "-V", "5", "-c", "-i", client_id,
        "-x", "3600", "-q", "1", "-t", topic, *extra,
    ]  # fmt: skip


def sub_session(port: int, client_id: str, topic: str) -> None:
    """Create a persistent MQTT 5 session subscribed (QoS 1) to `topic`, then leave."""
    subprocess.run(
        _session_sub(port, client_id, topic, "-E"),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=20,
    )


def sub_drain(
    port: int, client_id: str, topic: str, count: int, timeout: float
) -> subprocess.Popen[bytes]:
    """Reconnect a session made by `sub_session` and take `count` messages (to /dev/null)."""
    return subprocess.Popen(
        _session_sub(port, client_id, topic, "-C", str(count), "-W", str(max(1, int(timeout)))),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def http_json(url: str, timeout: float = 10.0, cookie: str | None = None) -> Any:
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class GatewayProc:
    """`stationgw run -c FILE` as its own process: what a user runs."""

    def __init__(self, config: Path, db: Path, http_port: int, log: Path) -> None:
        self.config = config
        self.db = db
        self.http_port = http_port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.cookie: str | None = None  # the session of `login`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def login(self) -> str:
        """Make a viewer user `bench` with `stationgw users add` (as an operator would;
        `users passwd` when it exists from an earlier start) and log in; answers the
        session cookie that /api/* calls send."""
        password = secrets.token_urlsafe(16)
        for command in ("add", "passwd"):
            args = ["users", command, "bench", "--password-stdin", "--db", str(self.db)]
            if command == "add":
                args += ["--role", "viewer"]
            done = subprocess.run(
                [sys.executable, "-m", "gateway.cli", *args],
                input=f"{password}\n".encode(),
                capture_output=True,
            )
            if done.returncode == 0:
                break
        else:
            raise BenchError(f"cannot make the bench user: {done.stderr.decode()[-500:]}")
        req = urllib.request.Request(
            f"{self.url}/api/login",
            data=json.dumps({"name": "bench", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            self.cookie = str(r.headers["Set-Cookie"]).split(";", 1)[0]
        return self.cookie

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        self.start_only()
        self.wait_up(timeout)

    def start_only(self) -> None:
        """Start the process; return at once."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def wait_up(self, timeout: float = 60.0) -> None:
        """Until the gateway answers with its broker and alert links connected."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gateway exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                health = http_json(f"{self.url}/api/health", 1)
                links = [c.get("connected", True) for c in health["channels"].values()]
                if health["broker"]["connected"] and all(links):  # alerts can go out too
                    return
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"gateway did not come up: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 30)

    def metric(self, name: str) -> float:
        """One counter of /metrics (summed over labels)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and (line[len(name)] in " {")
        )


class Db:
    """Read-only look at a gateway's database while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _c(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self._conn

    def last_seq(self, device: str) -> int | None:
        conn = self._c()
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT last_seq FROM devices WHERE id = ?", (device,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None or row[0] is None else int(row[0])

    def count(self) -> int:
        conn = self._c()
        if conn is None:
            return 0
        return int(
            conn.execute(  # rows and compacted points (chunks exist from schema 5 on)
                "SELECT (SELECT COUNT(*) FROM readings) + "
                "(SELECT COALESCE(SUM(count), 0) FROM chunks)"
            ).fetchone()[0]
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
