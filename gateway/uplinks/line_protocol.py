"""Outbox rows as InfluxDB line protocol, for the county's InfluxDB (pure; no IO).

Two measurements, timestamps in milliseconds (`precision=ms`), tags sorted by key:

    reading,device=rg-01,metric=rain_mm,point=xiaxi-slope,station=qingshui,village=xiaxi
        value=2.5 1700000000000
    ticket_event,device=rg-01,event=opened,kind=hazard,level=blue,point=xiaxi-slope,
        station=qingshui,village=xiaxi ticket_id=7i,value=2.5 1700000000000

(each one line in the protocol; broken here to fit).

`reading` carries every stored reading (field `flags`, an integer, only on readings the
gateway flagged as sensor faults); `ticket_event` every step on a ticket (opened, raised,
warning_issued, acknowledged, …) with the ticket's kind and its level at that moment.
Tags with no value are left out, as line protocol requires. A device, point or village
not in the station file is sent with the tags it has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.uplinks.outbox import EVENT, READING, Row

READING_MEASUREMENT = "reading"
EVENT_MEASUREMENT = "ticket_event"


def _escape_tag(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _tags(measurement: str, tags: Mapping[str, str | None]) -> str:
    parts = [measurement]
    for k in sorted(tags):  # sorted keys: what InfluxDB's own clients send, and cheapest
        v = tags[k]
        if v:
            parts.append(f"{k}={_escape_tag(v)}")
    return ",".join(parts)


@dataclass(frozen=True, slots=True)
class Place:
    point: str | None
    village: str | None


class LineEncoder:
    """Rows -> lines. `places` maps a device to its monitoring point and village."""

    def __init__(
        self,
        station: str,
        places: Mapping[str, Place],
        point_villages: Mapping[str, str],
        *,
        events: bool = True,
    ) -> None:
        self.station = station
        self.places = places
        self.point_villages = point_villages
        self.events = events
        self._prefix: dict[tuple[str, str], str] = {}
        self.skipped = 0  # readings with a value line protocol cannot carry (NaN, ±inf)

    def lines(self, rows: Iterable[Row]) -> list[str]:
        out: list[str] = []
        prefixes = self._prefix
        for r in rows:
            if r.kind == READING:
                key = (r.device or "", r.metric or "")
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = self._reading_prefix(*key)
                value = r.value
                if value is None or not math.isfinite(value):
                    self.skipped += 1
                    continue
                if r.flags:
                    out.append(f"{prefix} value={value!r},flags={r.flags}i {r.ts}")
                else:
                    out.append(f"{prefix} value={value!r} {r.ts}")
            elif r.kind == EVENT and self.events:
                out.append(self._event(r))
        return out

    def _reading_prefix(self, device: str, metric: str) -> str:
        place = self.places.get(device, Place(None, None))
        return _tags(
            READING_MEASUREMENT,
            {
                "station": self.station,
                "device": device,
                "metric": metric,
                "point": place.point,
                "village": place.village,
            },
        )

    def _event(self, r: Row) -> str:
        body = json.loads(r.body or "{}")
        ticket = body.get("ticket", {})
        event = body.get("event", {})
        device = ticket.get("device")
        point = ticket.get("point") or (
            self.places[device].point if device in self.places else None
        )
        tags = _tags(
            EVENT_MEASUREMENT,
            {
                "station": self.station,
                "event": event.get("kind"),
                "kind": ticket.get("kind"),
                "level": ticket.get("level"),
                "point": point,
                "village": self.point_villages.get(point or ""),
                "device": device,
            },
        )
        fields = f"ticket_id={int(ticket.get('id', 0))}i"
        value = event.get("value")
        if isinstance(value, int | float) and math.isfinite(value):
            fields += f",value={float(value)!r}"
        at = r.ts if r.ts is not None else event.get("at")
        return f"{tags} {fields} {int(at or 0)}"
