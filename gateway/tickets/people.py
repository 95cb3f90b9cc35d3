"""People, the grid and the duty roster, from the station file: who is called for a point.

The county's plan may bring the county's people (the top step of the ladder, grid
`county`) and deadlines (#19 item 4): `use_county` puts them beside the station file's
people — a county person replaces the file's person of the same id, the others stay —
and one `People` is shared by the desk and the page, so both see the same.

Pure lookups over the configuration; `now` is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.config.loop import CountyPart, Person
from gateway.config.station import Config
from gateway.tickets.calls import Callee, GridStep


class People:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.station.timezone)
        self.points = {p.id: p for p in cfg.points}
        self.use_county(None)  # the station file's people until a county plan is applied

    def use_county(self, county: CountyPart | None) -> None:
        """The county's part of its plan (None: the station file's people only). The
        indexes are built aside and swapped whole: a reader sees the old or the new."""
        theirs = list(county.people) if county else []
        named = {p.id for p in theirs}
        everyone = [p for p in self.cfg.people if p.id not in named] + theirs
        at_grid: dict[str, list[Person]] = {}
        for p in everyone:
            if p.grid:
                at_grid.setdefault(p.grid, []).append(p)
        self.everyone, self.at_grid = everyone, at_grid
        self.by_id = {p.id: p for p in everyone}
        self.by_phone = {p.phone: p for p in everyone if p.phone}
        self.county = county

    def find(self, who: str) -> Person | None:
        """A person by id, name or phone."""
        if who in self.by_id:
            return self.by_id[who]
        for phone in (who, who.removeprefix("+86"), f"+86{who}"):
            if phone in self.by_phone:
                return self.by_phone[phone]
        return next((p for p in self.everyone if p.name == who), None)

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
            for p in self.everyone
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

    def county_due(self, level: str, steps: Iterable[WarnStep]) -> int | None:
        """When the county steps in on this warning if nobody answers (None: no county
        part, or no deadline at its levels)."""
        if self.county is None:
            return None
        d = self.county.deadlines
        found = unanswered_due(steps, level, lambda lv: getattr(d, lv, None))
        return found[0] if found else None


STEP_KINDS = ("warning_issued", "warning_raised", "warning_lowered")
WarnStep = tuple[int, str, str | None]  # (at, event kind, level label) of a warning's events


def unanswered_due(
    steps: Iterable[WarnStep], level: str, deadline_s: Callable[[str], int | None]
) -> tuple[int, int] | None:
    """(due_at, deadline_s) of a warning's earliest step nobody answered afterwards: every
    step (issued, raised, lowered) waits for an answer (`acknowledged`) within the
    deadline of its level. The county escalates on it (gateway/county/escalation.py) and
    the station shows it; None when answered or no level of it has a deadline."""
    ordered = sorted(steps, key=lambda s: s[0])
    if not any(kind in STEP_KINDS for _, kind, _ in ordered):
        return None
    waiting: list[WarnStep] = []
    for s in ordered:
        if s[1] == "acknowledged":
            waiting = []
        elif s[1] in STEP_KINDS:
            waiting.append(s)
    best: tuple[int, int] | None = None
    for at, _, lv in waiting:
        d = deadline_s(lv or level)
        if d is not None and (best is None or at + d * 1000 < best[0]):
            best = (at + d * 1000, d)
    return best
