"""People, the grid and the duty roster, from the station file: who is called for a point.

Pure lookups over the configuration; `now` is an argument.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.config.loop import Person
from gateway.config.station import Config
from gateway.tickets.calls import Callee, GridStep


class People:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.by_id = {p.id: p for p in cfg.people}
        self.by_phone = {p.phone: p for p in cfg.people if p.phone}
        self.tz = ZoneInfo(cfg.station.timezone)
        self.points = {p.id: p for p in cfg.points}
        self.at_grid: dict[str, list[Person]] = {}
        for p in cfg.people:
            if p.grid:
                self.at_grid.setdefault(p.grid, []).append(p)

    def find(self, who: str) -> Person | None:
        """A person by id, name or phone."""
        if who in self.by_id:
            return self.by_id[who]
        for phone in (who, who.removeprefix("+86"), f"+86{who}"):
            if phone in self.by_phone:
                return self.by_phone[phone]
        return next((p for p in self.cfg.people if p.name == who), None)

    def stand_in(self, p: Person) -> Callee | None:
        """The person, or their deputy when they are marked absent."""
        d = self.by_id.get(p.deputy) if p.deputy else None
        if not p.absent:
            dep = Callee(d.id, d.name, d.phone, why=f"deputy for {p.id}") if d else None
            return Callee(p.id, p.name, p.phone, deputy=dep if d and not d.absent else None)
        if d is None or d.absent:
            return None
        return Callee(d.id, d.name, d.phone, why=f"deputy for {p.id}")

    def leaders(self) -> list[Callee]:
        """The township's leaders (乡镇领导), last in the calling order."""
        return [
            c
            for p in self.cfg.people
            if "leader" in p.roles and p.grid == "township" and (c := self.stand_in(p))
        ]

    def chain(self, point: str | None) -> list[GridStep]:
        """The grid steps above a monitoring point that have someone to call."""
        grids: list[str] = []
        pt = self.points.get(point or "")
        if pt is not None:
            grids.append(f"point:{pt.id}")
            if pt.group:
                grids.append(f"group:{pt.group}")
            grids.append(f"village:{pt.village}")
        grids += ["township", "county"]
        out: list[GridStep] = []
        for g in grids:
            callees = [c for p in self.at_grid.get(g, ()) if (c := self.stand_in(p))]
            if callees:
                out.append(GridStep(g, tuple(callees)))
        return out

    def on_duty(self, now: int) -> Callee | None:
        """The officer of the shift `now` falls in (station time); a deputy if absent."""
        local = datetime.fromtimestamp(now / 1000, UTC).astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        day = local.isoweekday()
        for s in self.cfg.duty:
            start = int(s.start[:2]) * 60 + int(s.start[3:])
            end = int(s.end[:2]) * 60 + int(s.end[3:])
            if start < end:
                hit = start <= minute < end and day in s.days
            else:  # overnight: the day is the one the shift began on
                yesterday = day - 1 or 7
                hit = (minute >= start and day in s.days) or (minute < end and yesterday in s.days)
            if hit:
                p = self.by_id.get(s.officer)
                return self.stand_in(p) if p else None
        return None
