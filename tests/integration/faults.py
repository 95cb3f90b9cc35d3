"""Helpers for the fault tests: a broker that can be stopped, frozen and killed, a QoS 1
publisher that remembers what the broker acknowledged, and readers of the gateway's API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.auth.policy import SESSION_COOKIE
from tests.conftest import MOSQUITTO, REPO, Gateway, free_port, wait_port

# device time of seq 0 in the payloads these tests send: an hour ago, on a whole second
# (recent: days old enough are compacted out of the readings table by the storage jobs)
T0 = (time.time_ns() // 1_000_000_000 - 3600) * 1000


def payload(seq: int, value: float = 1.0) -> bytes:
    return json.dumps({"ts": T0 + seq * 1000, "seq": seq, "values": {"rain_mm": value}}).encode()


class Broker:
    """Mosquitto on a fixed port: can be stopped, restarted, frozen and killed."""

    def __init__(self, folder: Path, extra: str = "", port: int | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            # run as root, mosquitto drops to user mosquitto, which cannot write the
            # database into the test's root-only folder (it would log "Permission denied")
            "user root\n"
            "max_queued_messages 1000000\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n" + extra
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            self.proc.wait(20)


class Publisher:
    """A device sending QoS 1 reports with a persistent session; paho resends what the
    broker did not acknowledge after a reconnect. `acked` holds the seqs the broker
    acknowledged (PUBACK), the device's own proof of delivery."""

    def __init__(self, port: int, device: str = "rg-01", station: str = "test") -> None:
        self.topic = f"stations/{station}/{device}/telemetry"
        self.acked: set[int] = set()
        self._mids: dict[int, int] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{device}-{os.getpid()}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        with self._lock:  # may come before send() has noted the mid
            seq = self._mids.pop(mid, None)
            if seq is None:
                self._early.add(mid)
            else:
                self.acked.add(seq)

    def send(self, seq: int) -> None:
        info = self.client.publish(self.topic, payload(seq), qos=1)  # not under our lock
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.add(seq)
            else:
                self._mids[info.mid] = seq

    def pending(self) -> int:
        with self._lock:
            return len(self._mids)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def seqs_stored(db: Path, device: str = "rg-01") -> list[int]:
    """The seqs stored for a device (recovered from the device timestamps)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT r.ts FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE s.device = ? AND s.metric = 'rain_mm' ORDER BY r.ts",
            (device,),
        ).fetchall()
    finally:
        conn.close()
    return [(ts - T0) // 1000 for (ts,) in rows]


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def metric(gw: Gateway, name: str) -> float:
    """A counter or gauge from /metrics (summed over its labels)."""
    text = httpx.get(f"{gw.url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def launch(gw: Gateway, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `stationgw run` without waiting for it to come up (it may die on purpose)."""
    with gw.log.open("ab") as log:
        gw.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "-c", str(gw.config)],
            stdout=log,
            stderr=log,
            cwd=REPO,
            env={**os.environ, **env},
        )
    return gw.proc


class Page:
    """The duty page open in headless Chromium; `evaluate` runs JavaScript in it (over
    the DevTools protocol on loopback), so a test reads what the page shows, live."""

    def __init__(self, url: str, profile: Path, session: str | None = None) -> None:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise AssertionError("chromium is not installed: run the README test command")
        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if "DevTools listening on ws://" in line:
                port = int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        if port is None:
            self.close()
            raise TimeoutError("chromium did not open its DevTools port")
        self._drain = threading.Thread(target=self.proc.stderr.read, daemon=True)
        self._drain.start()
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        self.ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        if session is not None:  # logged in: the session cookie the API set
            self.call(
                "Network.setCookie",
                {"name": SESSION_COOKIE, "value": session, "url": url, "httpOnly": True},
            )
        self.call("Page.navigate", {"url": url})

    def call(self, method: str, params: dict[str, object]) -> dict[str, Any]:
        """One DevTools protocol command on the page; its result."""
        import asyncio

        import websockets

        async def run() -> dict[str, Any]:
            async with websockets.connect(self.ws, max_size=None) as ws:
                await ws.send(json.dumps({"id": 1, "method": method, "params": params}))
                while True:
                    reply = json.loads(await ws.recv())
                    if reply.get("id") == 1:
                        if "error" in reply:
                            raise AssertionError(f"{method}: {reply['error']}")
                        result: dict[str, Any] = reply["result"]
                        return result

        return asyncio.run(run())

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if hasattr(self, "_drain"):
            self._drain.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def wait_for(check: Callable[[], object], what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {limit_s} s")
        time.sleep(0.1)
