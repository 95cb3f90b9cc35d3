"""CIGEM universal geohazard device payloads on `$dp` (pure codec).

Payload: type (1) · JSON length (2, big-endian) · JSON. Type 1 is plain JSON
`{"<devId>": {"L1_LF_1": 0.21, "L1_QJ_1": {"X": 1.2, …}}}`, type 2 the same with
timestamps `{"<devId>": {"L1_LF_1": {"2026-04-05T08:23:10.000Z": 0.2136}}}`; type 4
(firmware) is not telemetry. A sensor value is a number or an object of named numbers:
the reading names are `L1_LF_1` and `L1_QJ_1.X`. `S1_ZT` fields are device status
(supply, battery, signal, firmware), which feed device health.

Type 3 (a file, e.g. a camera picture) has the layout of the `$dp` binary data point it
descends from (OneNET; RT-Thread-packages/onenet `onenet_mqtt_get_bin_data`): type ·
descriptor length (2) · JSON descriptor · file length (4, big-endian) · the file. The
descriptor is keyed by the device id like every CIGEM JSON: `{"<devId>": {"ds_id":
"image", "at": "<ISO 8601>"}}` (`at` optional).

Field variants, accepted because they cannot be read another way, and named in
`Message.variant` (the driver counts them per device):
- bare JSON: the payload starts with `{` (0x7B is no type); timestamped (type 2) when
  every sensor is an object whose keys are all ISO 8601 times with a zone, plain (type 1)
  when none is; a mix is refused as ambiguous;
- a single type byte: type 1 or 2, then `{` at once, where the length field's first byte
  would be — and the length read there (0x7Bxx, at least 31,488) does not fit the payload.
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
class File:
    name: str  # the descriptor's ds_id ("" when absent)
    at: int | None  # the descriptor's time, UTC ms
    data: bytes


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    dev_id: str
    values: tuple[Value, ...]
    variant: str | None = None  # an accepted departure from the layout
    file: File | None = None  # type 3


BARE_JSON = "bare JSON without the type byte and length"
TYPE_BYTE_ONLY = "type byte without the 2-byte JSON length"


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


def _is_ts(key: str) -> bool:
    try:
        return datetime.fromisoformat(key.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def _json(body: bytes, at: int) -> tuple[str, dict[str, object]]:
    """The one object keyed by the device id; offsets of errors relative to the payload."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        pos = getattr(e, "pos", getattr(e, "start", 0))
        raise CigemError(f"invalid JSON: {e}", at + pos) from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise CigemError("JSON must be one object keyed by the device id", at)
    ((dev_id, inner),) = doc.items()
    if not isinstance(inner, dict):
        raise CigemError(f"device {dev_id}: sensors must be an object", at)
    return str(dev_id), inner


def _bare_kind(sensors: dict[str, object]) -> int:
    """Bare JSON: 2 when every sensor is {time: value}, 1 when no sensor is, else refused."""
    timed = [
        isinstance(v, dict) and bool(v) and all(_is_ts(k) for k in v) for v in sensors.values()
    ]
    if timed and all(timed):
        return 2
    if not any(timed):
        return 1
    names = [n for n, t in zip(sensors, timed, strict=True) if t]
    raise CigemError(
        f"bare JSON mixes timestamped sensors ({', '.join(names)}) with plain ones: ambiguous", 0
    )


def _values(kind: int, sensors: dict[str, object], at: int) -> tuple[Value, ...]:
    out: list[Value] = []
    for name, v in sensors.items():
        if kind == 2:
            if not isinstance(v, dict):
                raise CigemError(f"{name}: type 2 needs {{timestamp: value}}", at)
            for ts, x in v.items():
                _flatten(name, x, _ts(ts, at), out, at)
        else:
            _flatten(name, v, None, out, at)
    return tuple(out)


def _file(payload: bytes) -> Message:
    n = int.from_bytes(payload[1:3], "big")
    if len(payload) < 3 + n + 4:
        raise CigemError(
            f"type 3: {len(payload)} bytes, shorter than the {n}-byte descriptor and the "
            "4-byte file length",
            len(payload),
        )
    dev_id, desc = _json(payload[3 : 3 + n], 3)
    size = int.from_bytes(payload[3 + n : 7 + n], "big")
    data = payload[7 + n :]
    if len(data) != size:
        raise CigemError(f"type 3: file length says {size} bytes, {len(data)} follow", 3 + n)
    name = desc.get("ds_id", "")
    at = desc.get("at")
    if not isinstance(name, str):
        raise CigemError("type 3: ds_id must be a string", 3)
    if at is not None and not isinstance(at, str):
        raise CigemError("type 3: at must be an ISO 8601 time", 3)
    return Message(3, dev_id, (), file=File(name, _ts(at, 3) if at else None, data))


def decode(payload: bytes) -> Message:
    if not payload:
        raise CigemError("empty payload", 0)
    if payload[0] == 0x7B:  # "{": bare JSON (a variant)
        dev_id, sensors = _json(payload, 0)
        kind = _bare_kind(sensors)
        return Message(kind, dev_id, _values(kind, sensors, 0), variant=BARE_JSON)
    if len(payload) < 3:
        raise CigemError(f"{len(payload)} bytes: shorter than type and length", len(payload))
    kind = payload[0]
    if kind not in TYPES:
        raise CigemError(f"payload type {kind} is not 1…4", 0)
    if kind == 4:
        raise CigemError(f"payload type {kind} ({TYPES[kind]}) carries no readings", 0)
    if kind == 3:
        return _file(payload)
    n = int.from_bytes(payload[1:3], "big")
    body = payload[3:]
    if len(body) != n:
        if payload[1] != 0x7B:
            raise CigemError(f"length field says {n} JSON bytes, {len(body)} follow", 1)
        try:  # no length: the JSON right after the type byte
            dev_id, sensors = _json(payload[1:], 1)
        except CigemError as e:
            raise CigemError(
                f"length field says {n} JSON bytes, {len(body)} follow; nor is JSON right "
                f"after the type byte ({e.reason} at byte {e.offset})",
                1,
            ) from None
        return Message(kind, dev_id, _values(kind, sensors, 1), variant=TYPE_BYTE_ONLY)
    dev_id, sensors = _json(body, 3)
    return Message(kind, dev_id, _values(kind, sensors, 3))


def encode(kind: int, doc: object) -> bytes:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return bytes([kind]) + len(body).to_bytes(2, "big") + body
