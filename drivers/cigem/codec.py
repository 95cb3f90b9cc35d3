"""CIGEM universal geohazard device payloads on `$dp` (pure codec).

Payload: type (1) · JSON length (2, big-endian) · JSON. Type 1 is plain JSON
`{"<devId>": {"L1_LF_1": 0.21, "L1_QJ_1": {"X": 1.2, …}}}`, type 2 the same with
timestamps `{"<devId>": {"L1_LF_1": {"2026-04-05T08:23:10.000Z": 0.2136}}}`; types 3/4
(files, firmware) are not telemetry. A sensor value is a number or an object of named
numbers: the reading names are `L1_LF_1` and `L1_QJ_1.X`. `S1_ZT` fields are device status
(supply, battery, signal, firmware), which feed device health.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from gateway.core.errors import FrameError

TYPES = {1: "json", 2: "json with timestamps", 3: "file", 4: "firmware"}
STATUS_SENSOR = "S1_ZT"
UNITS = {
    "L1_LF": "mm",
    "L1_GP": "mm",
    "L1_SW": "mm",
    "L1_QJ": "°",
    "L1_JS": "mg",
    "L3_YL": "mm",
    "L4_NW": "m",
}
# S1_ZT field -> device health field
STATUS_HEALTH = {
    "ext_power_volt": "supply_v",
    "solar_volt": "solar_v",
    "battery_dump_energy": "battery",
    "signal_4g": "signal",
    "temp": "temperature",
    "sw_version": "firmware",
}


class CigemError(FrameError):
    """A frame that cannot be decoded: `reason`, and `offset` where in its bytes."""


@dataclass(frozen=True, slots=True)
class Value:
    name: str  # L1_LF_1 or L1_QJ_1.X
    ts: int | None  # UTC ms; None in plain JSON (the receive time is used)
    value: float | str

    @property
    def unit(self) -> str | None:
        return UNITS.get("_".join(self.name.split("_")[:2]))


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    dev_id: str
    values: tuple[Value, ...]


def _ts(text: str, offset: int) -> int:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CigemError(f"timestamp {text!r} is not ISO 8601", offset) from None
    if t.tzinfo is None:
        raise CigemError(f"timestamp {text!r} has no zone", offset)
    return int(t.timestamp() * 1000)


def _flatten(name: str, v: object, ts: int | None, out: list[Value], offset: int) -> None:
    if isinstance(v, bool):
        raise CigemError(f"{name}: a boolean is not a value", offset)
    if isinstance(v, int | float):
        out.append(Value(name, ts, float(v)))
    elif isinstance(v, str) and name.startswith(STATUS_SENSOR):
        out.append(Value(name, ts, v))
    elif isinstance(v, dict):
        for k, x in v.items():
            _flatten(f"{name}.{k}", x, ts, out, offset)
    else:
        raise CigemError(f"{name}: {type(v).__name__} is not a number or object", offset)


def decode(payload: bytes) -> Message:
    if len(payload) < 3:
        raise CigemError(f"{len(payload)} bytes: shorter than type and length", len(payload))
    kind = payload[0]
    if kind not in TYPES:
        raise CigemError(f"payload type {kind} is not 1…4", 0)
    if kind in (3, 4):
        raise CigemError(f"payload type {kind} ({TYPES[kind]}) carries no readings", 0)
    n = int.from_bytes(payload[1:3], "big")
    body = payload[3:]
    if len(body) != n:
        raise CigemError(f"length field says {n} JSON bytes, {len(body)} follow", 1)
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        pos = getattr(e, "pos", getattr(e, "start", 0))
        raise CigemError(f"invalid JSON: {e}", 3 + pos) from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise CigemError("JSON must be one object keyed by the device id", 3)
    ((dev_id, sensors),) = doc.items()
    if not isinstance(sensors, dict):
        raise CigemError(f"device {dev_id}: sensors must be an object", 3)
    out: list[Value] = []
    for name, v in sensors.items():
        if kind == 2:
            if not isinstance(v, dict):
                raise CigemError(f"{name}: type 2 needs {{timestamp: value}}", 3)
            for ts, x in v.items():
                _flatten(name, x, _ts(ts, 3), out, 3)
        else:
            _flatten(name, v, None, out, 3)
    return Message(kind, str(dev_id), tuple(out))


def encode(kind: int, doc: object) -> bytes:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return bytes([kind]) + len(body).to_bytes(2, "big") + body
