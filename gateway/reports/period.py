"""A report's month: local midnight on the 1st to local midnight on the 1st of the next
month, in the station's time zone, as UTC milliseconds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    key: str  # "2026-07"
    year: int
    month: int
    start: int  # UTC ms of local midnight on the 1st
    end: int  # UTC ms of local midnight on the 1st of the next month
    tz: str

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def days(self) -> list[date]:
        first = date(self.year, self.month, 1)
        n = (self.end - self.start) // 86_400_000 + 1  # a DST month may be an hour short
        out = [first + timedelta(days=i) for i in range(n + 1)]
        return [d for d in out if d.month == self.month]

    def day_starts(self) -> list[int]:
        """UTC ms of each local day's midnight; with `bisect_right(starts, ts) - 1` a
        reading's day index, without a time-zone conversion per reading."""
        return [int(datetime.combine(d, time(), self.zone).timestamp() * 1000) for d in self.days()]

    def day_of(self, ms: int) -> date:
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.zone).date()

    def local(self, ms: int | None, fmt: str = "%m-%d %H:%M") -> str:
        if ms is None:
            return ""
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.zone).strftime(fmt)


def _midnight(year: int, month: int, zone: ZoneInfo) -> int:
    return int(datetime(year, month, 1, tzinfo=zone).timestamp() * 1000)


def month_period(key: str, tz: str = "Asia/Shanghai") -> Period:
    """`YYYY-MM` in the zone `tz`; ValueError naming the text when it is not a month."""
    m = _MONTH.match(key.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"--month {key!r}: expected YYYY-MM, e.g. 2026-07")
    year, month = int(m.group(1)), int(m.group(2))
    zone = ZoneInfo(tz)
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return Period(
        f"{year:04d}-{month:02d}",
        year,
        month,
        _midnight(year, month, zone),
        _midnight(ny, nm, zone),
        tz,
    )


def previous(p: Period) -> Period:
    y, m = (p.year - 1, 12) if p.month == 1 else (p.year, p.month - 1)
    return month_period(f"{y:04d}-{m:02d}", p.tz)
