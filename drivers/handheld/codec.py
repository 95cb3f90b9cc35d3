"""Handheld inspection recorder (巡查记录仪) records (pure codec).

A record, as JSON (one object, or a list of them over MQTT; one per line from the dock):

    {"id": "HH01-000123", "by": "张三", "point": "xiaxi-slope",
     "at": "2026-07-01T06:30:00+08:00", "checklist": "slope-daily",
     "items": [{"item": "cracks", "result": "abnormal", "note": "新增裂缝约2cm"}],
     "text": "后山东侧", "photo": "IMG_0042.jpg",
     "hazard": {"level": "yellow", "title": "后山新增裂缝"}}

`id` is the recorder's own; with the recorder it keys the record, so a record sent again
(after an offline spell, from the dock and over MQTT) is stored once. `at` is the
recorder's clock: ISO 8601 with an offset, or UTC epoch milliseconds.

Dock protocol (serial/USB): UTF-8 lines; each line one record; a line `END` closes a
batch, which the gateway answers with `OK <n>` once the n records are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from drivers.link.framing import Reject
from gateway.core.errors import FrameError
from gateway.core.validation import problems

MAX_LINE = 64 * 1024
MIN_TS_MS = 946_684_800_000


class HandheldError(FrameError):
    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(reason, offset)
        self.args = (reason,)  # a record's problem reads without a byte offset


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    item: str = Field(min_length=1, max_length=64)
    result: Literal["ok", "abnormal", "na"]
    note: str | None = Field(default=None, max_length=2000)


class _Hazard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Literal["blue", "yellow", "orange", "red"]
    title: str = Field(min_length=1, max_length=200)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1, max_length=64)
    by: str = Field(min_length=1, max_length=64)
    point: str | None = Field(default=None, max_length=64)
    at: int | AwareDatetime
    checklist: str | None = Field(default=None, max_length=64)
    items: list[_Item] = Field(default=[], max_length=500)
    text: str | None = Field(default=None, max_length=10_000)
    photo: str | None = Field(default=None, max_length=500)
    hazard: _Hazard | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _milliseconds(cls, v: object) -> object:
        if isinstance(v, int | float) and not isinstance(v, bool) and v < MIN_TS_MS:
            raise ValueError(f"{v} is before 2000-01-01 (UTC milliseconds expected)")
        return v


_ONE: TypeAdapter[_Record] = TypeAdapter(_Record)
_MANY: TypeAdapter[list[_Record]] = TypeAdapter(
    Annotated[list[_Record], Field(min_length=1, max_length=10_000)]
)


@dataclass(frozen=True, slots=True)
class Item:
    item: str
    result: str
    note: str | None


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    by: str
    point: str | None
    at: int  # UTC ms
    checklist: str | None
    items: tuple[Item, ...]
    text: str | None
    photo: str | None
    hazard: tuple[str, str] | None  # (level, title)


@dataclass(frozen=True, slots=True)
class End:
    """The dock's end-of-batch line."""


def _plain(r: _Record) -> Record:
    at = int(r.at.timestamp() * 1000) if isinstance(r.at, datetime) else r.at
    return Record(
        r.id,
        r.by,
        r.point,
        at,
        r.checklist,
        tuple(Item(i.item, i.result, i.note) for i in r.items),
        r.text,
        r.photo,
        (r.hazard.level, r.hazard.title) if r.hazard else None,
    )


def decode(payload: bytes) -> list[Record]:
    """One record or a list; HandheldError names the key path of every problem."""
    many = payload.lstrip()[:1] == b"["
    try:
        records = _MANY.validate_json(payload) if many else [_ONE.validate_json(payload)]
    except ValidationError as e:
        raise HandheldError("; ".join(problems(e)[:5])) from None
    return [_plain(r) for r in records]


def take(buf: bytes) -> tuple[int, Record | End | Reject | None]:
    """Dock stream codec: one line, one record (or END)."""
    nl = buf.find(b"\n")
    if nl < 0:
        if len(buf) > MAX_LINE:
            return len(buf), Reject("garbage", f"line longer than {MAX_LINE} bytes", 0, buf)
        return 0, None
    line = buf[:nl].strip()
    if not line:
        return nl + 1, None
    if line == b"END":
        return nl + 1, End()
    try:
        (record,) = decode(line)
    except HandheldError as e:
        return nl + 1, Reject("malformed", f"record line: {e.reason}", 0, buf[: nl + 1])
    return nl + 1, record
