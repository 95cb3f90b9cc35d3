"""A township's real load, in real time: CPU, wake-ups, memory and bytes written to flash.

The station: 500 devices reporting once a minute and 20 reporting every 10 s, each report
carrying four metrics (water level, rain, crack, battery), 200 rules (thresholds,
rain accumulations over 1 h and 3 h, crack rates over 6 h), one responder called over the
MQTT alert channel, and the duty-room page open with its event stream. Nothing is
compressed: the bench's paho client publishes every report at its own second of the
minute, stamped with the wall clock.

The database first holds the last `PREFILL_H` hours of every series at one reading a
minute (as on a box that has been running): each series' newest rows then sit in a leaf
page of their own, as they do after days, and a commit touches one leaf per series it
stores (a fresh database packs many young series into one page and flatters the bytes).

After a warm-up, a window is measured on the gateway's process (all threads):
- `cpu_percent`: user + system time / wall time, % of one core (/proc/<pid>/stat);
- `wakeups_per_s`: voluntary context switches of every thread (each is a sleep that ended
  in a wake-up), /proc/<pid>/task/*/status;
- `rss_mb` at the end of the window;
- `disk_write_bytes_per_reading`: `write_bytes` of /proc/<pid>/io (bytes the process
  caused to be written to storage: WAL frames, checkpoints, the log) ÷ readings stored in
  the window; `disk_write_mb_per_day` the same rate over 24 h.

`quarter_core` (below) runs the same station under a storm, limited to a quarter of a core.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.core.model import Reading
from gateway.devtools.bench.latency import AlertClient, TicketEvents, percentile
from gateway.devtools.bench.procs import (
    BenchError,
    Broker,
    Db,
    GatewayProc,
    cpu_seconds,
    free_port,
    rss_mb,
)
from gateway.devtools.bench.workload import METRICS, Station, device_id, write_station
from gateway.storage.store import Store

SLOW = 500  # devices reporting once a minute
FAST = 20  # devices reporting every 10 s
RULES = 200
PREFILL_H = 6
STORM_MM = 40.0  # one report's rain in the storm: over every rain rule's blue line (30 mm
# in 1 h), within the gauge's physical range (50 mm)


def township_rules() -> str:
    """200 rules over the first 50 devices: per device a water-level threshold, a rain
    accumulation (1 h and 3 h), a crack rate (6 h, per day) and a battery threshold (low)."""
    out = []
    for k in range(RULES):
        device = device_id(k // 4)
        kind = k % 4
        head = f'[[rules]]\nid = "t{k}"\nname = "township rule {k}"\n'
        if kind == 0:
            out.append(
                head + 'kind = "threshold"\nmetric = "level_m"\n'
                "above = { blue = 8.0, yellow = 10.0, orange = 12.0, red = 14.0 }\n"
                f'devices = ["{device}"]\n'
            )
        elif kind == 1:
            out.append(
                head + 'kind = "accumulation"\nmetric = "rain_mm"\nsource = "increment"\n'
                f'devices = ["{device}"]\n'
                '[[rules.windows]]\nwindow = "1h"\nblue = 30\nyellow = 45\norange = 60\n'
                "red = 80\n"
                '[[rules.windows]]\nwindow = "3h"\nblue = 55\nyellow = 75\norange = 100\n'
                "red = 120\n"
            )
        elif kind == 2:
            out.append(
                head + 'kind = "rate"\nmetric = "crack_mm"\nwindow = "6h"\nper = "d"\n'
                "above = { blue = 5.0, yellow = 10.0, orange = 20.0, red = 40.0 }\n"
                f'devices = ["{device}"]\n'
            )
        else:
            out.append(
                head + 'kind = "threshold"\nmetric = "battery_v"\n'
                "below = { blue = 3.6, yellow = 3.5, orange = 3.4, red = 3.3 }\n"
                f'devices = ["{device}"]\n'
            )
    return "\n".join(out)


def write_township(folder: Path, tag: str, broker_port: int, extra: str = "") -> Station:
    """The township station: alerts on (a point per device, one responder), its rules."""
    station = write_station(
        folder, tag, SLOW + FAST, 1, broker_port, free_port(), alerts=True, storage=extra
    )
    Path(folder / "rules.toml").write_text(township_rules())
    return station


def prefill(db: Path, hours: int = PREFILL_H) -> int:
    """Every series' last `hours` at one reading a minute, stored as ingest stores them
    (rows and hourly rollups), before the gateway starts; return the readings."""
    now = int(time.time() * 1000) // 60_000 * 60_000
    store = Store(db)
    try:
        store.register_devices(device_id(d) for d in range(SLOW + FAST))
        with store.transaction():
            readings = [
                Reading(device_id(d), m.name, now - k * 60_000, value)
                for d in range(SLOW + FAST)
                for m, value in zip(METRICS, (3.0, 0.0, 10.0, 3.9), strict=True)
                for k in range(hours * 60, 0, -1)
            ]
            store.record_rollups(store.insert_readings(readings))
    finally:
        store.close()
    return len(readings)


def report(device: int, seq: int, ts: int, rain: float = 0.0) -> bytes:
    """One report of all four metrics, below every line (rain as given)."""
    values = {
        "level_m": round(3.0 + (device % 10) * 0.01, 3),
        "rain_mm": rain,
        "crack_mm": round(10.0 + (device % 5) + seq * 0.0001, 4),  # creeps ~0.14 mm/day
        "battery_v": 3.9,
    }
    return json.dumps({"ts": ts, "seq": seq, "values": values}, separators=(",", ":")).encode()


class TownshipLoad:
    """The bench's paho client publishing every device's report on its schedule (QoS 1)."""

    def __init__(self, port: int, station: str) -> None:
        self.station = station
        self.sent_messages = 0
        self.seq = [0] * (SLOW + FAST)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-town-{station}", protocol=mqtt.MQTTv5
        )
        self._client.max_inflight_messages_set(1000)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def sent_readings(self) -> int:
        return self.sent_messages * len(METRICS)

    def topic(self, device: int) -> str:
        return f"stations/{self.station}/{device_id(device)}/telemetry"

    def publish(self, device: int, rain: float = 0.0) -> float:
        """One report of `device` now; return when it was handed to paho."""
        with self._lock:
            seq = self.seq[device]
            self.seq[device] = seq + 1
            at = time.perf_counter()
            self._client.publish(
                self.topic(device), report(device, seq, int(time.time() * 1000), rain), qos=1
            )
            self.sent_messages += 1
        return at

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        due = [(t0 + i * 60.0 / SLOW, i, 60.0) for i in range(SLOW)]
        due += [(t0 + j * 10.0 / FAST, SLOW + j, 10.0) for j in range(FAST)]
        heapq.heapify(due)
        while not self._stop.is_set():
            at, device, every = due[0]
            delay = at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                continue
            heapq.heapreplace(due, (at + every, device, every))
            self.publish(device)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._client.disconnect()
        self._client.loop_stop()


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of every thread of a process (each ends in a wake-up)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def write_bytes(pid: int) -> int:
    """Bytes the process caused to be written to storage (/proc/<pid>/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise BenchError(f"no write_bytes for pid {pid}")


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    cpu: float
    wakeups: int
    written: int
    stored: int


def sample(pid: int, db: Db) -> Sample:
    return Sample(
        time.perf_counter(), cpu_seconds(pid), voluntary_switches(pid), write_bytes(pid), db.count()
    )


def wait_stored(db: Db, readings: int, timeout: float) -> int:
    """Wait until `readings` are stored (or `timeout`); return how many are."""
    deadline = time.monotonic() + timeout
    stored = db.count()
    while stored < readings and time.monotonic() < deadline:
        time.sleep(0.1)
        stored = db.count()
    return stored


def measure(
    broker: Broker, folder: Path, *, warmup_s: float, window_s: float, storage: str = ""
) -> dict[str, float | int]:
    station = write_township(folder / "township", "town", broker.port, storage)
    before = prefill(station.db)
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    events = TicketEvents(station.http_port, gw.login())  # the duty-room page is open
    load = TownshipLoad(broker.port, station.station)
    db = Db(station.db)
    try:
        load.start()
        time.sleep(warmup_s)
        a = sample(gw.pid, db)
        time.sleep(window_s)
        b = sample(gw.pid, db)
        rss = rss_mb(gw.pid)
        load.close()
        stored = wait_stored(db, before + load.sent_readings, 30) - before
    finally:
        load.close()
        events.close()
        gw.stop()
        db.close()
    span = b.t - a.t
    readings = max(b.stored - a.stored, 1)
    return {
        "window_s": round(span, 1),
        "readings_per_s": round((b.stored - a.stored) / span, 1),
        "cpu_percent": round(100 * (b.cpu - a.cpu) / span, 2),
        "wakeups_per_s": round((b.wakeups - a.wakeups) / span, 1),
        "rss_mb": round(rss, 1),
        "disk_write_bytes_per_reading": round((b.written - a.written) / readings),
        "disk_write_mb_per_day": round((b.written - a.written) / span * 86_400 / 1e6, 1),
        "lost": load.sent_readings - stored,
    }


# --- a quarter of a core, under a storm -----------------------------------------------


class CpuLimit:
    """Hold a process to `share` of one core: cgroup v2 `cpu.max` where the machine has
    the cpu controller there, else cgroup v1 `cpu.cfs_quota_us` (the same CFS bandwidth
    limit); `how` says which, `refused` why neither could be set up."""

    PERIOD_US = 100_000

    def __init__(self, name: str, share: float) -> None:
        self.name = name
        self.quota_us = int(self.PERIOD_US * share)
        self.path: Path | None = None
        self.how = ""
        self.refused = ""

    def _v2_root(self) -> Path | None:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                root = Path(parts[1])
                with contextlib.suppress(OSError):
                    if "cpu" in (root / "cgroup.controllers").read_text().split():
                        return root
        return None

    def apply(self, pid: int) -> bool:
        reasons = []
        root = self._v2_root()
        if root is not None:
            try:
                with contextlib.suppress(OSError):  # may be on already, or not allowed here
                    (root / "cgroup.subtree_control").write_text("+cpu")
                path = root / self.name
                path.mkdir(exist_ok=True)
                (path / "cpu.max").write_text(f"{self.quota_us} {self.PERIOD_US}")
                (path / "cgroup.procs").write_text(str(pid))
                self.path, self.how = path, f"cgroup v2 cpu.max {self.quota_us} {self.PERIOD_US}"
                return True
            except OSError as e:
                reasons.append(f"cgroup v2: {e}")
        else:
            reasons.append("cgroup v2: no cpu controller in any cgroup2 mount")
        v1 = Path("/sys/fs/cgroup/cpu")
        try:
            path = v1 / self.name
            path.mkdir(exist_ok=True)
            (path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
            (path / "cgroup.procs").write_text(str(pid))
            self.path = path
            self.how = (
                f"cgroup v1 cpu.cfs_quota_us {self.quota_us} per {self.PERIOD_US} µs "
                f"(the same CFS bandwidth limit as v2 cpu.max; {'; '.join(reasons)})"
            )
            return True
        except OSError as e:
            reasons.append(f"cgroup v1: {e}")
        self.refused = "; ".join(reasons)
        return False

    def throttled_s(self) -> float:
        """Time the limit held the process back."""
        if self.path is None:
            return 0.0
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "throttled_usec":
                return int(value) / 1e6
            if key == "throttled_time":
                return int(value) / 1e9
        return 0.0

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # once its process has exited


def storm(
    broker: Broker, folder: Path, *, background_s: float, storm_s: float, storage: str = ""
) -> dict[str, float | int | str]:
    """The township under a storm at a quarter of a core: every rain gauge that has a rule
    (50) reports over its lines within `storm_s`, on top of the township's own load.
    Latency: a storm report handed to paho → its point's JSON alert on the alert topic."""
    station = write_township(folder / "quarter", "quarter", broker.port, storage)
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    limit = CpuLimit(f"stationgw-bench-{gw.pid}", 0.25)
    limited = limit.apply(gw.pid)
    events = TicketEvents(station.http_port, gw.login())
    probe = AlertClient(broker.port, station.station)
    load = TownshipLoad(broker.port, station.station)
    db = Db(station.db)
    gauges = [k // 4 for k in range(RULES) if k % 4 == 1]
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    try:
        load.start()
        time.sleep(background_s)
        c0, th0 = cpu_seconds(gw.pid), limit.throttled_s()
        t0 = time.perf_counter()
        for n, device in enumerate(gauges):
            wait = t0 + storm_s * n / len(gauges) - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent[f"p{device}"] = load.publish(device, STORM_MM)
        deadline = time.perf_counter() + 30
        while len(got) < len(sent) and time.perf_counter() < deadline:
            with contextlib.suppress(Exception):
                at, alert = probe.alerts.get(timeout=0.5)
                point = str(alert.get("point"))
                if point in sent and point not in got:
                    got[point] = at
        span = time.perf_counter() - t0
        c1, th1 = cpu_seconds(gw.pid), limit.throttled_s()
        load.close()
        stored = wait_stored(db, load.sent_readings, 60)
    finally:
        load.close()
        probe.close()
        events.close()
        gw.stop()
        db.close()
        limit.remove()
    latencies = [(got[p] - sent[p]) * 1000 for p in got]
    return {
        "limit": limit.how if limited else f"refused: {limit.refused}; not limited",
        "limited": int(limited),
        "storm_reports": len(sent),
        "storm_s": storm_s,
        "alerts": len(got),
        "alerts_missed": len(sent) - len(got),
        "alert_latency_ms_p50": round(percentile(latencies, 0.5), 1),
        "alert_latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "alert_latency_ms_max": round(max(latencies), 1) if latencies else float("nan"),
        "cpu_percent": round(100 * (c1 - c0) / span, 1),
        "throttled_s": round(th1 - th0, 2),
        "lost": load.sent_readings - stored,
    }
