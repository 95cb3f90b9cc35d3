"""MQTT JSON codec (pure): topics and payloads of `stations/<station>/<device>/...`.

Telemetry payload, one report or a list of reports:
    {"ts": 1780000000000, "seq": 17, "values": {"rain_mm": 0.5, "battery_v": 3.9}}
`ts` is the device's clock in UTC epoch milliseconds (or an ISO 8601 time with an offset);
without it the gateway's receive time is used. `seq` is optional, per device, increasing.
Status payload: `online` or `offline` (retained; `offline` is the device's last will).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, NotRequired

from pydantic import AwareDatetime, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from gateway.core.errors import PayloadError
from gateway.core.validation import problems

MIN_TS_MS = 946_684_800_000  # 2000-01-01: anything earlier is seconds or a dead clock
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class _Report(TypedDict):
    """Validated straight from bytes into plain dicts: no model instance per report."""

    ts: NotRequired[int | AwareDatetime | None]
    seq: NotRequired[Annotated[int, Field(ge=0)] | None]
    values: Annotated[dict[str, float], Field(min_length=1)]


_ONE: TypeAdapter[_Report] = TypeAdapter(_Report)
_MANY: TypeAdapter[list[_Report]] = TypeAdapter(
    Annotated[list[_Report], Field(min_length=1, max_length=10_000)]
)
_SPACE = frozenset(b" \t\r\n")


@dataclass(frozen=True, slots=True)
class Report:
    ts: int
    seq: int | None
    values: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Topic:
    station: str
    device: str
    kind: Literal["telemetry", "status"]


def parse_topic(topic: str) -> Topic | None:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "stations" or not parts[2]:
        return None
    if parts[3] == "telemetry":
        return Topic(parts[1], parts[2], "telemetry")
    if parts[3] == "status":
        return Topic(parts[1], parts[2], "status")
    return None


def _ms(ts: int | datetime | None, received_ms: int, where: str) -> int:
    if ts is None:
        return received_ms
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    if ts < MIN_TS_MS:
        hint = " (looks like seconds; send milliseconds)" if ts > MIN_TS_MS // 1000 else ""
        raise PayloadError(f"{where}ts: {ts} is before 2000-01-01{hint}")
    if ts > MAX_TS_MS:
        raise PayloadError(f"{where}ts: {ts} is after 2100-01-01 (microseconds?)")
    return ts


def decode_telemetry(payload: bytes, received_ms: int) -> list[Report]:
    """Decode one telemetry message; raise PayloadError naming the key and the reason."""
    first = payload[:1]
    if first and first[0] in _SPACE:
        first = payload.lstrip()[:1]
    many = first == b"["
    try:
        reports = _MANY.validate_json(payload) if many else [_ONE.validate_json(payload)]
    except ValidationError as e:
        raise PayloadError("; ".join(problems(e)[:5])) from None
    out = []
    for i, r in enumerate(reports):
        ts = r.get("ts")
        if ts is None:
            ms = received_ms
        elif type(ts) is int and MIN_TS_MS <= ts <= MAX_TS_MS:
            ms = ts  # the common case, without building the error prefix
        else:
            ms = _ms(ts, received_ms, f"[{i}]." if many else "")
        out.append(Report(ms, r.get("seq"), tuple(r["values"].items())))
    return out


def decode_status(payload: bytes) -> bool:
    """`online` -> True, `offline` -> False."""
    text = payload.strip().decode("ascii", errors="replace")
    if text == "online":
        return True
    if text == "offline":
        return False
    raise PayloadError(f"status must be 'online' or 'offline', got {text[:40]!r}")
