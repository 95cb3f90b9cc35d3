"""MQTT JSON codec (pure): topics and payloads of `stations/<station>/<device>/...`.

Telemetry payload, one report or a list of reports:
    {"ts": 1780000000000, "seq": 17, "values": {"rain_mm": 0.5, "battery_v": 3.9}}
`ts` is the device's clock in UTC epoch milliseconds (a JSON integer, or a float whose
fraction is dropped), or an ISO 8601 time with an offset as a string; every form passes the
same plausibility window (`plausible_ms`). Without `ts` the gateway's receive time is used
and the report is marked untimed (`Report.timed`): the pipeline keeps such reports apart
(one millisecond each) and recognises their redeliveries by `seq` only. `seq` is optional,
per device, increasing, 0 to 2^63 - 1. Numbers are JSON numbers: `true` and `"3.5"` are
refused, as is a timestamp written as a number in a string.
Status payload: `online` or `offline` (retained; `offline` is the device's last will).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, Strict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from gateway.core.errors import PayloadError
from gateway.core.validation import problems

MIN_TS_MS = 946_684_800_000  # 2000-01-01: anything earlier is seconds or a dead clock
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01
MAX_SEQ = 2**63 - 1  # SQLite's largest integer: the gap bookkeeping stores it
# One documented number each (README "Topics and payloads"): the broker's max_packet_size
# (deploy/mosquitto) keeps bodies to 262,144 bytes, this keeps the work per message bounded;
# 2,000 reports with ts, seq and two values (~110 bytes each) fit in those bytes.
MAX_REPORTS = 2_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_Int = Annotated[int, Strict()]  # a JSON integer; not `true`, not "17"
_Num = Annotated[float, Strict()]  # a JSON number (integer or not); not `true`, not "3.5"


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class _Report(TypedDict):
    """Validated straight from bytes into plain dicts: no model instance per report."""

    ts: NotRequired[_Int | _Num | Annotated[str, Strict()] | None]
    seq: NotRequired[Annotated[int, Strict(), Field(ge=0, le=MAX_SEQ)] | None]
    values: Annotated[dict[str, _Num], Field(min_length=1)]


_ONE: TypeAdapter[_Report] = TypeAdapter(_Report)
_MANY: TypeAdapter[list[_Report]] = TypeAdapter(
    Annotated[list[_Report], Field(min_length=1, max_length=MAX_REPORTS)]
)
_SPACE = frozenset(b" \t\r\n")


@dataclass(frozen=True, slots=True)
class Report:
    ts: int
    seq: int | None
    values: tuple[tuple[str, float], ...]
    timed: bool = True  # False: no `ts` was sent, `ts` is the receive time


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


def plausible_ms(ms: int, shown: str, where: str) -> int:
    """The one time window every format passes: [2000-01-01, 2100-01-01] in UTC ms."""
    if ms < MIN_TS_MS:
        seconds = ms > MIN_TS_MS // 1000 and shown.isdigit()
        hint = " (looks like seconds; send milliseconds)" if seconds else ""
        raise PayloadError(f"{where}ts: {shown} is before 2000-01-01{hint}")
    if ms > MAX_TS_MS:
        hint = " (microseconds?)" if shown.isdigit() else ""
        raise PayloadError(f"{where}ts: {shown} is after 2100-01-01{hint}")
    return ms


def _short(digits: str) -> str:
    """A number as the reason shows it: a 400-digit integer is not echoed whole."""
    return digits if len(digits) <= 24 else f"{digits[:12]}...({len(digits)} characters)"


def _ms(ts: int | float | str, where: str) -> int:
    if isinstance(ts, int):
        text = str(ts) if -(10**30) < ts < 10**30 else _short(str(ts))
        return plausible_ms(ts, text, where)
    if isinstance(ts, float):
        return plausible_ms(int(ts), repr(ts), where)  # finite: NaN/inf refused by the schema
    shown = repr(ts[:40])
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        raise PayloadError(
            f"{where}ts: {shown} is not a number of milliseconds nor an ISO 8601 time "
            '(send a JSON number, or e.g. "2026-07-01T06:30:00+08:00")'
        ) from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise PayloadError(f"{where}ts: {shown} has no UTC offset (add Z or +08:00)")
    try:
        ms = (dt - _EPOCH) // _MS
    except OverflowError:  # year 1 with a positive offset: before year 1 in UTC
        raise PayloadError(f"{where}ts: {shown} is before 2000-01-01") from None
    return plausible_ms(ms, shown, where)


_TS_KINDS = frozenset({"int", "float", "str"})  # the union's branches pydantic names


def _problems(e: ValidationError) -> list[str]:
    """At most five, one per key: `ts` of a wrong type is one line, not one per branch."""
    out: dict[str, str] = {}
    for line in problems(e, _TS_KINDS):
        key, _, why = line.partition(": ")
        if key == "ts" or key.endswith(".ts"):
            why = "must be a JSON number of milliseconds or an ISO 8601 string"
        out.setdefault(key, f"{key}: {why}")
    return list(out.values())[:5]


def decode_telemetry(payload: bytes, received_ms: int) -> list[Report]:
    """Decode one telemetry message; raise PayloadError naming the key and the reason."""
    first = payload[:1]
    if first and first[0] in _SPACE:
        first = payload.lstrip()[:1]
    many = first == b"["
    try:
        reports = _MANY.validate_json(payload) if many else [_ONE.validate_json(payload)]
    except ValidationError as e:
        raise PayloadError("; ".join(_problems(e))) from None
    out = []
    for i, r in enumerate(reports):
        ts = r.get("ts")
        if ts is None:
            out.append(Report(received_ms, r.get("seq"), tuple(r["values"].items()), False))
            continue
        if type(ts) is int and MIN_TS_MS <= ts <= MAX_TS_MS:
            ms = ts  # the common case, without building the error prefix
        else:
            ms = _ms(ts, f"[{i}]." if many else "")
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
