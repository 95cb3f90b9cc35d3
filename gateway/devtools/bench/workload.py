"""Generated stations, rule sets and telemetry streams of any size.

Every device has the same four metrics (water level, 5-minute rain, crack, battery), so
`devices × 4` is the number of series. Rule k watches metric `METRICS[k % 4]` of device
`k // 4`: per-point thresholds, as technicians write them, over many series. Stream values
stay below the thresholds unless a probe crosses them on purpose.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from gateway.core.model import Level, Reading
from rules.evaluator import RuleSet
from rules.model import Scope, ThresholdRule


@dataclass(frozen=True, slots=True)
class MetricShape:
    name: str
    unit: str
    low: float
    high: float
    direction: str  # "above" or "below"
    levels: tuple[float, float, float, float]  # blue, yellow, orange, red


METRICS: tuple[MetricShape, ...] = (
    MetricShape("level_m", "m", 0, 20, "above", (8.0, 10.0, 12.0, 14.0)),
    MetricShape("rain_mm", "mm", 0, 50, "above", (10.0, 20.0, 30.0, 40.0)),
    MetricShape("crack_mm", "mm", 0, 500, "above", (50.0, 100.0, 150.0, 200.0)),
    MetricShape("battery_v", "V", 0, 15, "below", (3.6, 3.5, 3.4, 3.3)),
)
T0_MS = 1_780_000_000_000  # 2026-05-28: the streams' first timestamp


def device_id(i: int) -> str:
    return f"dev-{i:05d}"


ALERT_TOPIC = "stations/{station}/alerts"


def station_toml(
    station: str,
    devices: int,
    broker_port: int,
    http_port: int,
    db: Path,
    rules: Path,
    *,
    alerts: bool = False,
    storage: str | None = None,
) -> str:
    """A station file; with `alerts`, one township responder is called over MQTT;
    `storage` in place of the bench's `[storage]` section (None: keep every reading hot)."""
    # with alerts every device has a point of its own: a warning is per point, so a
    # crossing on each device issues a new warning and a new call
    points = devices if alerts else max(1, devices // 100)
    out = [
        f'[station]\nid = "{station}"\nname = "bench {station}"\n',
        '[[villages]]\nid = "v1"\nname = "bench village"\n',
    ]
    out += [f'[[points]]\nid = "p{p}"\nname = "point {p}"\nvillage = "v1"\n' for p in range(points)]
    metrics = ", ".join(
        f'{m.name} = {{ unit = "{m.unit}", min = {m.low}, max = {m.high} }}' for m in METRICS
    )
    for i in range(devices):
        out.append(
            f'[[devices]]\nid = "{device_id(i)}"\nname = "d{i}"\nkind = "mixed"\n'
            f'point = "p{i % points}"\nmetrics = {{ {metrics} }}\n'
        )
    out.append(
        f'[broker]\nport = {broker_port}\nclient_id = "stationgw-bench-{station}"\n'
        'protocol = "5"\nreceive_maximum = 10000\n'
    )
    out.append(f'[database]\npath = "{db}"\n')
    out.append(f"[http]\nport = {http_port}\n")
    out.append(f'[rules]\npath = "{rules}"\n')
    # the streams are dated from T0_MS, months back: the storage jobs leave them alone
    # (the storage bench compacts its own data by itself)
    if storage is None:
        out.append('[storage]\nhot = "3650d"\n\n[storage.retention]\nraw = "forever"\n')
    else:
        out.append(storage)
    if alerts:
        out.append(
            '[[people]]\nid = "bench-responder"\nname = "响应人"\nroles = ["leader"]\n'
            'grid = "township"\n'
        )
        out.append(f'[notify.mqtt]\nenabled = true\nalert_topic = "{ALERT_TOPIC}"\n')
    return "\n".join(out)


def rules_toml(count: int, devices: int) -> str:
    out = []
    for k in range(count):
        m = METRICS[k % len(METRICS)]
        levels = ", ".join(f"{lv.label} = {v}" for lv, v in zip(Level, m.levels, strict=True))
        out.append(
            f'[[rules]]\nid = "r{k}"\nname = "rule {k}"\nkind = "threshold"\n'
            f'metric = "{m.name}"\n{m.direction} = {{ {levels} }}\n'
            f'devices = ["{device_id((k // len(METRICS)) % devices)}"]\n'
        )
    return "\n".join(out)


def ruleset(count: int, devices: int) -> RuleSet:
    """The rules of `rules_toml`, built directly (for the pure evaluator)."""
    rules = []
    for k in range(count):
        m = METRICS[k % len(METRICS)]
        rules.append(
            ThresholdRule(
                id=f"r{k}",
                name=f"rule {k}",
                metric=m.name,
                direction="above" if m.direction == "above" else "below",
                limits=tuple(zip(Level, m.levels, strict=True)),
                scope=Scope(frozenset({device_id((k // len(METRICS)) % devices)})),
            )
        )
    return RuleSet(rules)


@dataclass(frozen=True, slots=True)
class Station:
    folder: Path
    config: Path
    db: Path
    http_port: int
    station: str


def write_station(
    folder: Path,
    station: str,
    devices: int,
    rules: int,
    broker_port: int,
    http_port: int,
    *,
    alerts: bool = False,
    storage: str | None = None,
) -> Station:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "data" / "station.db"
    rules_file = folder / "rules.toml"
    rules_file.write_text(rules_toml(rules, devices))
    config = folder / "station.toml"
    config.write_text(
        station_toml(
            station, devices, broker_port, http_port, db, rules_file, alerts=alerts, storage=storage
        )
    )
    return Station(folder, config, db, http_port, station)


def level_value(i: int) -> float:
    """A water level below the blue line, varying slowly."""
    return round(2.0 + 1.5 * math.sin(i / 500.0) + (i % 7) * 0.01, 3)


def one_per_message(i: int, base: int = T0_MS) -> bytes:
    """Message i of a stream of single readings (seq = reading index)."""
    return b'{"ts":%d,"seq":%d,"values":{"level_m":%s}}\n' % (
        base + i * 1000,
        i,
        repr(level_value(i)).encode(),
    )


def ten_per_message(i: int) -> bytes:
    """Message i of a stream of ten readings each (a device sending what it buffered)."""
    parts = [
        b'{"ts":%d,"seq":%d,"values":{"level_m":%s}}'
        % (T0_MS + j * 1000, j, repr(level_value(j)).encode())
        for j in range(i * 10, i * 10 + 10)
    ]
    return b"[" + b",".join(parts) + b"]\n"


def write_stream(path: Path, messages: int, per_message: int) -> int:
    """Write `messages` lines; return the number of readings they hold."""
    line = one_per_message if per_message == 1 else ten_per_message
    with path.open("wb") as f:
        for start in range(0, messages, 10_000):
            f.write(b"".join(line(i) for i in range(start, min(messages, start + 10_000))))
    return messages * per_message


def json_line(ts: int, values: dict[str, float], seq: int | None = None) -> bytes:
    body: dict[str, object] = {"ts": ts, "values": values}
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def realistic_point(metric: str, series: int, minute: int, rng: random.Random) -> float:
    """A 1-minute sample of a realistic shape for storage measurements.

    Rain is mostly zero, with storms a few hours long; water levels move slowly with
    noise; crack meters creep; batteries follow the solar day.
    """
    if metric == "rain_mm":
        day, minute_of_day = divmod(minute + series * 97, 1440)
        storm = (day * 7 + series) % 9 == 0 and 600 <= minute_of_day < 840
        return round(rng.uniform(0, 2.5), 1) if storm and rng.random() < 0.6 else 0.0
    if metric == "level_m":
        return round(3.0 + math.sin((minute + series * 31) / 4000.0) + rng.gauss(0, 0.005), 3)
    if metric == "crack_mm":
        return round(10.0 + series % 5 + minute * 0.00005 + rng.gauss(0, 0.01), 2)
    day_phase = math.sin(2 * math.pi * ((minute % 1440) / 1440.0 - 0.25))
    return round(3.9 + 0.15 * max(day_phase, 0.0) + rng.gauss(0, 0.003), 3)


def evaluator_readings(count: int, devices: int, t0: int) -> list[Reading]:
    """Readings over every device and metric, below all thresholds."""
    out = []
    for i in range(count):
        m = METRICS[i % len(METRICS)]
        value = {"level_m": 2.0, "rain_mm": 0.0, "crack_mm": 12.0, "battery_v": 3.9}[m.name]
        out.append(Reading(device_id((i // len(METRICS)) % devices), m.name, t0 + i, value))
    return out
