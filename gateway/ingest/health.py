"""Device health: what drivers learn about a device besides its readings.

Drivers note supply, signal, firmware and error counts (CRC, timeouts, malformed frames;
frames accepted with a field variant, and the last such variant)
in a `HealthRecorder` (in memory, event-loop side). The `HealthMonitor` writes them to
the `device_health` table on the writer thread every few seconds, and marks a device
offline when it has been silent for longer than `stale_factor` × its reporting interval
(online again when data comes). Device-fault tickets for silent devices are the rules
engine's business; this keeps the state it judges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal

from drivers.modbus.config import ModbusRtuTransport, ModbusTcpTransport
from gateway.config.station import Config, Device
from gateway.events import Hub
from gateway.storage.store import DeviceState, Store

log = logging.getLogger("stationgw.health")

Counter = Literal["crc_errors", "timeouts", "malformed", "variants"]
VALUE_FIELDS = ("battery", "supply_v", "solar_v", "signal", "temperature")


@dataclass(slots=True)
class Delta:
    counts: dict[str, int] = field(default_factory=dict)
    values: dict[str, float | str] = field(default_factory=dict)
    at: int = 0


@dataclass(frozen=True, slots=True)
class Health:
    device: str
    battery: float | None
    supply_v: float | None
    solar_v: float | None
    signal: float | None
    temperature: float | None
    firmware: str | None
    crc_errors: int
    timeouts: int
    malformed: int
    offline_reason: str | None
    updated_at: int | None
    variants: int = 0  # frames accepted with a departure from the protocol's standard
    last_variant: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "battery": self.battery,
            "supply_v": self.supply_v,
            "solar_v": self.solar_v,
            "signal": self.signal,
            "temperature": self.temperature,
            "firmware": self.firmware,
            "errors": {
                "crc": self.crc_errors,
                "timeouts": self.timeouts,
                "malformed": self.malformed,
            },
            "variants": self.variants,
            "last_variant": self.last_variant,
            "offline_reason": self.offline_reason,
            "updated_at": self.updated_at,
        }


EMPTY = Health("", None, None, None, None, None, None, 0, 0, 0, None, None)


class HealthRecorder:
    """Collects health notes from drivers until the monitor writes them."""

    def __init__(self) -> None:
        self._pending: dict[str, Delta] = {}

    def count(self, device: str, counter: Counter, at: int, n: int = 1) -> None:
        d = self._pending.setdefault(device, Delta())
        d.counts[counter] = d.counts.get(counter, 0) + n
        d.at = max(d.at, at)

    def note(self, device: str, at: int, **values: float | str | None) -> None:
        d = self._pending.setdefault(device, Delta())
        for k, v in values.items():
            if k not in (*VALUE_FIELDS, "firmware", "last_variant"):
                raise ValueError(f"unknown health field {k!r}")
            if v is not None:
                d.values[k] = v
        d.at = max(d.at, at)

    def take(self) -> dict[str, Delta]:
        out, self._pending = self._pending, {}
        return out


# --- on the writer thread ---------------------------------------------------------------


def write_deltas(store: Store, deltas: Mapping[str, Delta]) -> None:
    conn = store.conn
    with store.transaction():
        for device, d in deltas.items():
            conn.execute("INSERT OR IGNORE INTO device_health (device) VALUES (?)", (device,))
            sets = ["updated_at = MAX(COALESCE(updated_at, 0), ?)"]
            args: list[object] = [d.at]
            for name, n in d.counts.items():
                sets.append(f"{name} = {name} + ?")
                args.append(n)
            for name, v in d.values.items():
                sets.append(f"{name} = ?")
                args.append(v)
            conn.execute(
                f"UPDATE device_health SET {', '.join(sets)} WHERE device = ?", (*args, device)
            )


def sweep(
    store: Store, intervals: Mapping[str, int], factor: float, now: int, since: int
) -> list[DeviceState]:
    """Mark silent devices offline and reporting ones online; return those that changed.

    A device is silent when neither data nor a birth came for factor × its interval
    (counted from the gateway's start at the earliest, so a restart is no outage).
    """
    changed: list[str] = []
    conn = store.conn
    shortest = min(intervals.values(), default=None)
    silent_before = None if shortest is None else now - factor * shortest
    with store.transaction():
        conn.execute(  # back online through its driver since: the reason no longer holds
            "UPDATE device_health SET offline_reason = NULL WHERE offline_reason IS NOT NULL "
            "AND device IN (SELECT id FROM devices WHERE online = 1)"
        )
        # only the devices that may change, found by SQLite: every 5 s over 5,000 devices,
        # reading them all into Python held the writer (and ingest's commits) ~20 ms
        for d in _candidates(conn, since, silent_before):
            interval = intervals.get(d.id)  # None: silence is not judged, data still counts
            last = max(d.last_seen or 0, d.status_at or 0, since) if d.online else 0
            if d.online and interval is not None and now - last > factor * interval:
                store.device_status(d.id, False, now)
                _reason(
                    conn,
                    d.id,
                    f"no data for {(now - last) / 1000:.1f} s "
                    f"(interval {interval / 1000:g} s × {factor:g})",
                    now,
                )
                changed.append(d.id)
            elif not d.online and d.last_seen is not None and d.last_seen > (d.status_at or 0):
                store.device_status(d.id, True, d.last_seen)
                _reason(conn, d.id, None, now)
                changed.append(d.id)
    return [s for i in changed if (s := store.device(i)) is not None]


def _candidates(
    conn: sqlite3.Connection, since: int, silent_before: float | None
) -> list[DeviceState]:
    """Offline devices heard from since their status, and (when any device has an
    interval) online ones silent since before `silent_before`, the cut-off of the
    shortest interval (a superset: `sweep` judges each by its own; 1 ms of slack keeps
    float rounding on the safe side)."""
    rows = conn.execute(
        f"SELECT {DeviceState.COLUMNS} FROM devices "
        "WHERE (online = 0 AND last_seen > coalesce(status_at, 0)) OR (online = 1 AND ? "
        "AND max(coalesce(last_seen, 0), coalesce(status_at, 0), ?) < ?) ORDER BY id",
        (silent_before is not None, since, (silent_before or 0) + 1),
    ).fetchall()
    return [DeviceState.from_row(r) for r in rows]


def _reason(conn: sqlite3.Connection, device: str, reason: str | None, now: int) -> None:
    conn.execute("INSERT OR IGNORE INTO device_health (device) VALUES (?)", (device,))
    conn.execute(
        "UPDATE device_health SET offline_reason = ?, updated_at = ? WHERE device = ?",
        (reason, now, device),
    )


def load_health(store: Store) -> dict[str, Health]:
    rows = store.conn.execute(
        "SELECT device, battery, supply_v, solar_v, signal, temperature, firmware, "
        "crc_errors, timeouts, malformed, offline_reason, updated_at, variants, last_variant "
        "FROM device_health"
    ).fetchall()
    return {r[0]: Health(*r) for r in rows}


def interval_ms(device: Device) -> int | None:
    """The reporting interval a device's silence is judged by."""
    if device.interval_s is not None:
        return round(device.interval_s * 1000)
    if isinstance(device.transport, ModbusRtuTransport | ModbusTcpTransport):
        return round(device.transport.poll_s * 1000)
    return None


class HealthMonitor:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        writer: Executor,
        recorder: HealthRecorder,
        hub: Hub,
        clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.writer = writer
        self.recorder = recorder
        self.hub = hub
        self.clock = clock
        self.factor = cfg.health.stale_factor
        self.check_s = cfg.health.check_s
        self.intervals = {d.id: ms for d in cfg.devices if (ms := interval_ms(d)) is not None}
        self.since = clock()

    async def flush(self) -> None:
        deltas = self.recorder.take()
        if deltas:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.writer, write_deltas, self.store, deltas)

    async def check(self) -> None:
        await self.flush()
        loop = asyncio.get_running_loop()
        changed = await loop.run_in_executor(
            self.writer, sweep, self.store, self.intervals, self.factor, self.clock(), self.since
        )
        for d in changed:
            log.info("device %s is %s", d.id, "online" if d.online else "offline (silent)")
            self.hub.publish("device", d.to_json())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self.check()
            except (sqlite3.Error, OSError) as e:
                log.error("device health not written (%s); retrying", e)

    async def close(self) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            await self.flush()
