"""The county side for the uplink tests: a second real Mosquitto that can be stopped and
started again on the same port with its persistence, a subscriber that drops repeats by
seq, and a station (store, ingest, uplinks) run in-process against them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.station import Config, parse_config
from gateway.core.batch import Batch
from gateway.core.model import Reading
from gateway.ingest.commit import Ingestor
from gateway.tickets.store import StationStore
from gateway.uplinks import outbox
from gateway.uplinks.service import Uplinks
from rules.evaluator import RuleSet
from tests.conftest import MOSQUITTO, free_port, wait_port

T0 = 1_780_000_000_000


class CountyBroker:
    """Mosquitto with persistence; stop() and start() keep its port and its data."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 100\n"
            "log_dest stderr\nlog_type error\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None


class CountySubscriber:
    """Subscribes to county/<station>/# (QoS 1, persistent session) and keeps every
    message; `accepted()` drops repeats by seq and fails on a gap or a step back."""

    def __init__(self, port: int, station: str) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"county-{station}", clean_session=False
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        topic = f"county/{station}/#"

        def on_connect(c: mqtt.Client, *_: object) -> None:
            c.subscribe(topic, qos=1)

        def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.received.append((m.topic, json.loads(m.payload)))

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port, 10)
        self.client.loop_start()

    def accepted(self) -> list[tuple[str, int, Any]]:
        """(topic, seq, item) in order, repeats dropped: one entry per reading, per
        ticket event, per health change."""
        high = 0
        out: list[tuple[str, int, Any]] = []
        with self.lock:
            received = list(self.received)
        for topic, body in received:
            seq, last = body["seq"], body["last"]
            if last <= high:
                continue  # a repeat
            assert seq <= high + 1, f"gap: after seq {high} came {seq}..{last} on {topic}"
            if topic.endswith("/readings"):
                items = body["readings"]
                assert last == seq + len(items) - 1
                out += [(topic, seq + i, x) for i, x in enumerate(items) if seq + i > high]
            else:
                out.append((topic, seq, body))
            high = last
        return out

    def high(self) -> int:
        with self.lock:
            return max((b["last"] for _, b in self.received), default=0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


STATION = {
    "station": {"id": "test", "name": "测试站"},
    "villages": [{"id": "v1", "name": "一村"}],
    "points": [{"id": "p1", "name": "一号点", "village": "v1"}],
    "devices": [
        {
            "id": f"rg-{i:02d}",
            "name": "雨量计",
            "kind": "rain_gauge",
            "point": "p1",
            "metrics": {"rain_mm": {"unit": "mm", "min": 0, "max": 50}},
        }
        for i in range(1, 4)
    ],
    "database": {"path": "data/station.db"},
}


def station_config(folder: Path, uplinks: dict[str, Any]) -> Config:
    return parse_config({**STATION, "uplinks": uplinks}, folder / "station.toml")


def reading_batch(start: int, n: int) -> Batch:
    """n readings spread over three devices, with values that say their index."""
    return Batch(
        readings=[
            Reading(f"rg-{i % 3 + 1:02d}", "rain_mm", T0 + i * 10, round(i * 0.01, 2))
            for i in range(start, start + n)
        ]
    )


class Station:
    """A station's store, ingest and uplinks, in this process (a writer thread as in the
    gateway); the uplinks talk to real servers."""

    def __init__(self, cfg: Config, **uplink_args: Any) -> None:
        self.cfg = cfg
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self.store = self.writer.submit(StationStore, cfg.database.path).result()
        self.writer.submit(self.store.register_devices, [d.id for d in cfg.devices]).result()
        self.ingestor = self.writer.submit(Ingestor, self.store, RuleSet([])).result()
        self.uplinks = Uplinks(
            cfg,
            cfg.database.path,
            self.writer,
            self.store,
            lambda: time.time_ns() // 10**6,
            housekeeping_s=0.5,
            **uplink_args,
        )

    async def ingest(self, batch: Batch) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.writer, self.ingestor.commit, batch, T0)
        self.uplinks.nudge()

    async def on_writer(self, fn: Callable[[StationStore], Any]) -> Any:
        def tx() -> Any:
            with self.store.transaction():
                return fn(self.store)

        return await asyncio.get_running_loop().run_in_executor(self.writer, tx)

    async def status(self) -> dict[str, Any]:
        """What GET /api/uplinks answers."""
        return dict(await self.on_writer(lambda s: self.uplinks.status(s)))

    async def newest(self) -> int:
        return int(await self.on_writer(lambda s: outbox.newest(s.conn)))

    async def until(self, what: Callable[[], bool], limit_s: float = 120) -> None:
        """Wait (without a timed assert: the deadline only stops a hung test)."""
        deadline = time.monotonic() + limit_s
        while not what():
            if time.monotonic() > deadline:
                states = {link.name: link.status() for link in self.uplinks.links}
                raise TimeoutError(f"not done after {limit_s} s: {states}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.uplinks.stop()
        self.writer.submit(self.store.close).result()
        self.writer.shutdown(wait=True)
