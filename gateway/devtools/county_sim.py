"""The county simulation's parts, shared by `stationgw county demo` and `county bench`:

- `county_file`: a county.toml for a cluster, a PostgreSQL and a list of stations;
- `SimStation`: one real station — Mosquitto, `stationgw run` with a `nats` uplink and
  its devices (`DevicePublisher`, MQTT JSON reports over QoS 1) — optionally inside a
  network namespace (`Netns`);
- `LoadStations`: the other stations of a county, as one load generator that speaks the
  station uplink exactly: the same subjects, payloads (`gateway.uplinks.mqtt.messages`),
  `Nats-Msg-Id: <station>:<seq>` ids and batching, an outbox per station that keeps every
  message until JetStream acked it and sends it again otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.core.errors import GatewayError
from gateway.devtools.cluster import free_port, wait_port
from gateway.uplinks.mqtt import messages
from gateway.uplinks.outbox import READING, Row

STATIONGW = str(Path(sys.executable).parent / "stationgw")


def mosquitto_binary() -> str:
    for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto"):
        if os.path.exists(p):
            return p
    raise GatewayError("mosquitto not found: apt-get install mosquitto")


def county_file(
    name: str,
    servers: list[str],
    dsn: str,
    stations: list[tuple[str, str]],
    http_port: int,
    *,
    max_deliver: int = 5,
    duty: str = "",
) -> str:
    """`duty`: the escalation sections ([escalation], [[people]], [[duty]], [notify]) as
    TOML, placed after the rest."""
    out = [f'[county]\nname = "{name}"\n']
    out += [f'[[stations]]\nid = "{i}"\nname = "{n}"\n' for i, n in stations]
    out.append(f"[nats]\nservers = [{', '.join(repr(s) for s in servers)}]\n")
    out.append(f"max_deliver = {max_deliver}\n")
    out.append(f'[postgres]\ndsn = "{dsn}"\n')
    out.append(f'[http]\nhost = "127.0.0.1"\nport = {http_port}\n')
    return "".join(out).replace("'", '"') + duty


def station_file(
    station: str,
    name: str,
    devices: int,
    broker_port: int,
    http_port: int,
    db: Path,
    servers: list[str],
    *,
    max_rate: float = 2000,
    rules: Path | None = None,
) -> str:
    """`rules`: a rules file for the station (none: it only forwards readings)."""
    points = max(1, devices // 20)
    out = [
        f'[station]\nid = "{station}"\nname = "{name}"\n',
        f'[[villages]]\nid = "v1"\nname = "{name}一村"\n',
        f'[[villages]]\nid = "v2"\nname = "{name}二村"\n',
    ]
    out += [
        f'[[points]]\nid = "p{p}"\nname = "{p + 1}号监测点"\nvillage = "v{p % 2 + 1}"\n'
        f"lon = {110 + p * 0.01:.3f}\nlat = {30 + p * 0.01:.3f}\n"
        for p in range(points)
    ]
    out += [
        f'[[devices]]\nid = "rg-{i:03d}"\nname = "雨量计 {i}"\nkind = "rain_gauge"\n'
        f'point = "p{i % points}"\n'
        'metrics = { rain_mm = { unit = "mm", min = 0, max = 500 } }\n'
        for i in range(devices)
    ]
    out.append(f'[broker]\nport = {broker_port}\nclient_id = "stationgw-{station}"\n')
    out.append(f'[database]\npath = "{db}"\n')
    out.append(f"[http]\nport = {http_port}\n")
    if rules is not None:
        out.append(f'[rules]\npath = "{rules}"\n')
    urls = ", ".join(f'"{s}"' for s in servers)
    out.append(
        f"[uplinks.nats]\nservers = [{urls}]\nmax_rate = {max_rate}\nstate_interval_s = 10\n"
    )
    return "\n".join(out)


class Netns:
    """Network namespaces on a private bridge: the host end has `.1`, namespace i has
    `.(10 + i)` of a /24 no interface of this machine uses; nothing is routed out (no
    default route, forwarding untouched). `remove()` deletes them all."""

    def __init__(self, count: int, tag: str) -> None:
        self.tag = tag
        self.bridge = f"sgw{tag}"[:15]
        self.subnet = _free_subnet()
        self.host = f"{self.subnet}.1"
        self.names = [f"sgw{tag}-{i}" for i in range(count)]
        self.addrs = [f"{self.subnet}.{10 + i}" for i in range(count)]
        self.made: list[str] = []

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self.made.append("bridge")
        _ip("addr", "add", f"{self.host}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, (ns, addr) in enumerate(zip(self.names, self.addrs, strict=True)):
            host_end, ns_end = f"sgw{self.tag}h{i}"[:15], f"sgw{self.tag}n{i}"[:15]
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("link", "set", host_end, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ns_end)
            _ip("-n", ns, "link", "set", ns_end, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[i]]

    def remove(self) -> None:
        for name in self.made:
            if name == "bridge":
                continue
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        if "bridge" in self.made:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        self.made = []


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GatewayError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> str:
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for b in range(219, 250):
        if f" 10.{b}." not in used:
            return f"10.{b}.0"
    raise GatewayError("no free 10.x.0.0/24 for the bench's namespaces")


class DevicePublisher:
    """`devices` rain gauges reporting once every `interval_s` (times `speed()`), as MQTT
    JSON over QoS 1; counts what the broker acknowledged."""

    def __init__(self, host: str, port: int, station: str, devices: int, interval_s: float):
        self.host, self.port = host, port
        self.station = station
        self.devices = devices
        self.interval_s = interval_s
        self.speed = 1.0
        self.acked = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"dev-{station}")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{station}")
        self.client.max_inflight_messages_set(1000)

        def on_publish(*_: object) -> None:
            self.acked += 1

        self.client.on_publish = on_publish

    def start(self) -> None:
        self.client.connect(self.host, self.port, 30)
        self.client.loop_start()
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(self.station)
        tick = 0.2
        due = 0.0
        i = 0
        while not self._stop.is_set():
            due += tick * self.devices / self.interval_s * self.speed
            while due >= 1:
                due -= 1
                d = i % self.devices
                i += 1
                ts = time.time_ns() // 1_000_000
                body = f'{{"ts":{ts},"values":{{"rain_mm":{rng.random() * 5:.2f}}}}}'
                self.client.publish(f"stations/{self.station}/rg-{d:03d}/telemetry", body, 1)
                self.sent += 1
            self._stop.wait(tick)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        deadline = time.monotonic() + 10
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.1)
        self.client.disconnect()
        self.client.loop_stop()


class SimStation:
    """A real station: Mosquitto, `stationgw run` and its devices, in `folder`; with
    `prefix` (`ip netns exec NS`) the broker and gateway run in that namespace and the
    devices reach the broker at `host`."""

    def __init__(
        self,
        folder: Path,
        station: str,
        name: str,
        devices: int,
        servers: list[str],
        *,
        prefix: list[str] | None = None,
        host: str = "127.0.0.1",
        interval_s: float = 60,
        max_rate: float = 2000,
        rules: Path | None = None,
    ) -> None:
        self.folder = folder
        self.station = station
        self.prefix = prefix or []
        self.host = host
        self.broker_port = free_port() if not prefix else 1883
        self.http_port = free_port() if not prefix else 8080
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "station.toml"
        self.config.write_text(
            station_file(
                station,
                name,
                devices,
                self.broker_port,
                self.http_port,
                folder / "data" / "station.db",
                servers,
                max_rate=max_rate,
                rules=rules,
            )
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.devices = DevicePublisher(host, self.broker_port, station, devices, interval_s)
        self.gateway: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        listen = "0.0.0.0" if self.prefix else "127.0.0.1"
        conf.write_text(
            f"listener {self.broker_port} {listen}\nallow_anonymous true\n"
            "persistence false\nmax_queued_messages 1000000\nlog_dest none\n"
        )
        self.procs.append(subprocess.Popen([*self.prefix, mosquitto_binary(), "-c", str(conf)]))
        wait_port(self.host, self.broker_port)
        log = (self.folder / "gateway.log").open("ab")
        self.gateway = subprocess.Popen(
            [*self.prefix, STATIONGW, "run", "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(self.gateway)
        log_file = self.folder / "gateway.log"
        deadline = time.monotonic() + 120
        while b"connected to broker" not in log_file.read_bytes():  # it subscribed: go
            if self.gateway.poll() is not None or time.monotonic() > deadline:
                raise GatewayError(f"station {self.station} did not start: see {log_file}")
            time.sleep(0.1)
        self.devices.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.devices.stop()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


async def _quiet(e: Exception) -> None:
    """The generator's connection errors are expected (nodes killed, the outage)."""


@dataclass
class _Pending:
    first: int
    last: int
    subject: str
    payload: bytes
    future: asyncio.Future[Any] | None = None
    sent_at: float = 0.0


@dataclass
class _LoadStation:
    id: str
    next_seq: int = 1
    due: float = 0.0
    outbox: deque[_Pending] = field(default_factory=deque)
    acked: int = 0  # readings JetStream acknowledged
    retry_at: float = 0.0


class LoadStations:
    """`count` stations of `devices` devices each reporting every `interval_s` (times
    `speed`), generated and sent the way the station's nats uplink sends them."""

    def __init__(
        self,
        servers: list[str],
        ids: list[str],
        devices: int,
        interval_s: float = 60,
        *,
        batch: int = 500,
        inflight: int = 16,
        ack_timeout_s: float = 5,
    ) -> None:
        self.servers = servers
        self.stations = [_LoadStation(i) for i in ids]
        self.devices = devices
        self.interval_s = interval_s
        self.batch = batch
        self.inflight = inflight
        self.ack_timeout_s = ack_timeout_s
        self.speed = 1.0
        self.generating = True
        self.resends = 0
        self._stop = asyncio.Event()

    def generated(self) -> dict[str, int]:
        return {s.id: s.next_seq - 1 for s in self.stations}

    def backlog(self) -> int:
        return sum(p.last - p.first + 1 for s in self.stations for p in s.outbox)

    def _generate(self, s: _LoadStation, dt: float, now_ms: int) -> None:
        s.due += dt * self.devices / self.interval_s * self.speed
        n = int(s.due)
        if n <= 0:
            return
        s.due -= n
        seq0 = s.next_seq
        d0 = (seq0 - 1) % self.devices
        rows = [
            Row(
                seq0 + k,
                READING,
                f"rg-{(d0 + k) % self.devices:03d}",
                "rain_mm",
                now_ms,
                round(random.random() * 5, 2),
                0,
                None,
            )
            for k in range(n)
        ]
        s.next_seq += n
        prefix = f"county.{s.id}"
        for m in messages(rows, prefix, s.id, self.batch, "."):
            s.outbox.append(_Pending(m.first, m.last, m.topic, m.payload))

    async def run(self) -> None:
        nc = await nats.connect(
            servers=self.servers,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            pending_size=64 * 1024 * 1024,
            name="county-bench-load",
            error_cb=_quiet,
        )
        js = nc.jetstream(publish_async_max_pending=20_000)
        start = time.monotonic()
        # each station commits once a second, the stations spread over the second
        made = [start - i / len(self.stations) for i in range(len(self.stations))]
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                now_ms = time.time_ns() // 1_000_000
                for i, s in enumerate(self.stations):
                    if now - made[i] >= 1.0:
                        if self.generating:
                            self._generate(s, now - made[i], now_ms)
                        made[i] = now
                for s in self.stations:
                    await self._send(js, nc, s, now)
                await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _send(self, js: Any, nc: Any, s: _LoadStation, now: float) -> None:
        while s.outbox and s.outbox[0].future is not None and s.outbox[0].future.done():
            p = s.outbox[0]
            assert p.future is not None
            if p.future.cancelled() or p.future.exception() is not None:
                p.future = None  # sent again below, after a pause
                self.resends += 1
                s.retry_at = now + 0.5
                break
            s.outbox.popleft()
            s.acked += p.last - p.first + 1
        flying = 0
        for p in s.outbox:
            if p.future is not None and not p.future.done():
                if now - p.sent_at > self.ack_timeout_s:
                    p.future.cancel()
                    p.future = None
                    self.resends += 1
                else:
                    flying += 1
                    continue
            if p.future is not None and p.future.done():
                if p.future.cancelled() or p.future.exception() is not None:
                    p.future = None
                    self.resends += 1
                    s.retry_at = now + 0.5  # as the uplink: a pause, then again
                else:
                    continue
            if flying >= self.inflight or not nc.is_connected or now < s.retry_at:
                break
            try:
                p.future = await js.publish_async(
                    p.subject, p.payload, headers={"Nats-Msg-Id": f"{s.id}:{p.first}"}
                )
                p.sent_at = now
                flying += 1
            except (nats.errors.Error, OSError):
                break

    def stop(self) -> None:
        self._stop.set()
