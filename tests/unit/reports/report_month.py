"""A scripted month (July 2026, Asia/Shanghai) pushed through the real commit path.

Readings every 5 minutes from two rain gauges, a water-level gauge and a crack meter go
through `Ingestor.commit` with the time passed in; the one-second tick is stepped after
each commit (escalations, no-data); people acknowledge, take lifecycle steps and lift
warnings through the `Desk`; patrol records are stored the way the handheld driver
stores them. The script keeps its own log of what it did, so the tests can compute the
expected figures without the report code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.handheld.codec import Item, Record
from gateway.config.station import Config, load_config
from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.ingest.commit import Ingestor
from gateway.ingest.rules_loader import RulesLoader
from gateway.tickets.desk import Desk
from gateway.tickets.lifecycle import Step
from gateway.tickets.patrols import flags, store_record
from gateway.tickets.store import StationStore

TZ = ZoneInfo("Asia/Shanghai")
MIN = 60_000
STEP = 5 * MIN


def at(month: int, day: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return int(datetime(2026, month, day, hh, mm, ss, tzinfo=TZ).timestamp() * 1000)


RULES = """
[[rules]]
id = "rain-1h"
name = "小时雨量"
kind = "accumulation"
metric = "rain_mm"
[[rules.windows]]
window = "1h"
blue = 20
yellow = 30
orange = 50
red = 80

[[rules]]
id = "river-level"
name = "河道水位超警"
kind = "threshold"
metric = "level_m"
above = { blue = 3.0, yellow = 3.3, orange = 3.6, red = 4.0 }

[[rules]]
id = "offline"
name = "设备离线"
kind = "no_data"
after = "30m"
devices = ["rg-01", "rg-02", "wl-01", "cm-01"]
"""
SCOPE = 'devices = ["rg-01", "rg-02", "wl-01", "cm-01"]\n'


DEVICES = """
[[devices]]
id = "rg-01"
name = "下溪雨量计"
kind = "rain_gauge"
point = "slope"
interval_s = 300
metrics.rain_mm = { unit = "mm", min = 0, max = 50 }

[[devices]]
id = "rg-02"
name = "上坪雨量计"
kind = "rain_gauge"
point = "river"
interval_s = 300
metrics.rain_mm = { unit = "mm", min = 0, max = 50 }

[[devices]]
id = "wl-01"
name = "上坪河水位计"
kind = "water_level"
point = "river"
interval_s = 300
metrics.level_m = { unit = "m", min = 0, max = 20 }

[[devices]]
id = "cm-01"
name = "后山裂缝计"
kind = "crack_meter"
point = "slope"
interval_s = 300
metrics.crack_mm = { unit = "mm", min = 0, max = 500 }

[[devices]]
id = "hh-01"
name = "巡查记录仪"
kind = "handheld"
point = "slope"
transport = "handheld"
metrics.battery_v = { unit = "V", min = 0, max = 5 }
"""

STATION = """
[station]
id = "qs"
name = "清水镇应急管理站"

[[villages]]
id = "xiaxi"
name = "下溪村"

[[villages]]
id = "shangping"
name = "上坪村"

[[points]]
id = "slope"
name = "后山滑坡"
village = "xiaxi"
group = "g1"
kind = "slope"

[[points]]
id = "river"
name = "上坪河段"
village = "shangping"
kind = "river"

{devices}

[[checklists]]
id = "slope-daily"
name = "滑坡日常巡查"
point_kinds = ["slope"]
items = [{{ id = "cracks", text = "裂缝" }}, {{ id = "drainage", text = "排水沟" }}, {{ id = "signs", text = "警示牌" }}]

[[checklists]]
id = "river-daily"
name = "河道日常巡查"
point_kinds = ["river"]
items = [{{ id = "dyke", text = "堤防" }}, {{ id = "gauge", text = "水尺" }}]

[database]
path = "station.db"

[rules]
path = "rules.toml"

[[people]]
id = "li"
name = "李明"
phone = "13800000001"
roles = ["grid_member"]
grid = "point:slope"

[[people]]
id = "zhou"
name = "周强"
phone = "13800000002"
roles = ["grid_member"]
grid = "group:g1"

[[people]]
id = "chen"
name = "陈国华"
phone = "13800000003"
roles = ["leader"]
grid = "village:xiaxi"

[[people]]
id = "liu"
name = "刘芳"
phone = "13800000004"
roles = ["grid_member"]
grid = "point:river"

[[people]]
id = "wu"
name = "吴建"
phone = "13800000005"
roles = ["leader"]
grid = "village:shangping"

[[people]]
id = "wang"
name = "王立新"
phone = "13800000006"
roles = ["leader"]
grid = "township"

[[people]]
id = "zhao"
name = "赵敏"
phone = "13800000007"
roles = ["duty_officer"]

[[people]]
id = "qian"
name = "钱鹏"
phone = "13800000008"
roles = ["duty_officer"]

[[people]]
id = "sun"
name = "孙涛"
phone = "13800000009"
roles = ["technician"]

[[duty]]
officer = "zhao"
start = "08:00"
end = "20:00"

[[duty]]
officer = "qian"
start = "20:00"
end = "08:00"

[tickets]
deadlines.confirm = {{ red = "30m", orange = "1h", yellow = "4h", blue = "24h" }}
deadlines.control = {{ red = "2h", orange = "6h", yellow = "24h", blue = "3d" }}

[notify.mqtt]
enabled = false
"""


def station(folder: Path, devices: str = DEVICES, rules: str = RULES) -> Config:
    """The station file and its rules, written to `folder` and loaded as the CLI does."""
    (folder / "rules.toml").write_text(rules, encoding="utf-8")
    path = folder / "station.toml"
    path.write_text(STATION.format(devices=devices), encoding="utf-8")
    return load_config(path)


# --- the weather, the river, the slope ---------------------------------------------------
# (start, end, mm per 5-minute report) at each gauge; local times
STORMS: dict[str, list[tuple[int, int, float]]] = {
    "rg-01": [
        (at(6, 29, 10), at(6, 29, 11), 2.0),  # June: 24 mm in an hour -> blue
        (at(7, 5, 14), at(7, 5, 17), 5.0),  # 180 mm: orange, a storm day
        (at(7, 22, 9), at(7, 22, 10), 6.0),  # 72 mm in an hour: orange, a storm day
        (at(7, 25, 23), at(7, 26, 1), 2.5),  # 60 mm over local midnight: 30 + 30, no storm day
    ],
    "rg-02": [
        (at(7, 18, 10), at(7, 18, 12), 2.0),  # 48 mm: blue, just short of a storm day
        (at(7, 22, 9), at(7, 22, 10), 1.0),
    ],
}
OUTAGE = ("wl-01", at(7, 10, 8), at(7, 10, 20))  # the water-level gauge is silent 12 h
BAD_CRACK = at(7, 12, 6)  # one crack reading outside the sensor's range


def rain(device: str, ts: int) -> float:
    return next((mm for a, b, mm in STORMS.get(device, ()) if a <= ts < b), 0.0)


def level(ts: int) -> float:
    if at(7, 18, 11) <= ts < at(7, 18, 12):
        return 3.45  # over the yellow line (3.3 m) for an hour
    return 2.0 + (0.1 if at(7, 18, 10) <= ts < at(7, 18, 14) else 0.0)


def crack(ts: int) -> float:
    base = 12.0 + (ts - at(6, 1)) / 86_400_000 * 0.2  # 0.2 mm a day
    return round(base + (3.0 if ts >= at(7, 22, 10) else 0.0), 3)  # a 3 mm slip on the 22nd


@dataclass
class Script:
    """What the script did, for the tests' own expectations."""

    acks: list[tuple[str, int, str]] = field(default_factory=list)  # point, when, who
    readings: dict[str, int] = field(default_factory=dict)  # device -> count sent in July
    patrols: list[Record] = field(default_factory=list)


class Month:
    def __init__(self, folder: Path) -> None:
        self.cfg = station(folder)
        self.store = StationStore(self.cfg.database.path)
        self.store.register_devices(d.id for d in self.cfg.devices)
        loader = RulesLoader(self.cfg)
        loader.load()
        assert not loader.errors, loader.errors
        self.ruleset = loader.ruleset()
        self.desk = Desk(self.store, self.cfg)
        self.ingestor = Ingestor(self.store, self.ruleset, self.desk)
        self.script = Script()
        self.actions: list[tuple[int, Callable[[int], None]]] = []

    # --- what people do ---------------------------------------------------------------

    def warning_at(self, point: str) -> int:
        w = self.desk.open_warning(point)
        assert w is not None, f"no warning in force at {point}"
        return w.id

    def hazard(self, device: str, metric: str) -> int:
        point = {d.id: d.point for d in self.cfg.devices}[device]
        rule = "rain-1h" if metric == "rain_mm" else "river-level"
        t = self.store.open_ticket_for(rule, device, metric, point)
        assert t is not None, f"no open hazard for {device}/{metric}"
        return t.id

    def ack(self, when: int, point: str, who: str) -> None:
        def act(now: int) -> None:
            self.desk.acknowledge(self.warning_at(point), who, "sms", "收到", now)
            self.script.acks.append((point, now, who))

        self.actions.append((when, act))

    def lift(self, when: int, point: str) -> None:
        self.actions.append(
            (
                when,
                lambda now: self.desk.step(
                    self.warning_at(point),
                    Step.LIFT,
                    "zhao",
                    "duty_officer",
                    "雨停，险情解除",
                    [],
                    now,
                ),
            )
        )

    def steps(
        self,
        when: int,
        ticket: Callable[[], int],
        step: Step,
        who: str,
        role: str,
        note: str | None = None,
    ) -> None:
        self.actions.append(
            (when, lambda now: self.desk.step(ticket(), step, who, role, note, [], now))
        )

    def patrol(
        self,
        when: int,
        who: str,
        point: str,
        checklist: str,
        items: list[str],
        abnormal: int = 0,
        hazard: tuple[str, str] | None = None,
    ) -> None:
        record = Record(
            id=f"HH-{when}",
            by=who,
            point=point,
            at=when,
            checklist=checklist,
            items=tuple(
                Item(i, "abnormal" if n < abnormal else "ok", None) for n, i in enumerate(items)
            ),
            text=None,
            photo=None,
            hazard=hazard,
        )
        self.script.patrols.append(record)

        def act(now: int) -> None:  # what HandheldDriver.store does in its transaction
            with self.store.transaction():
                ticket = None
                if hazard is not None:
                    ticket, new = self.store.open_hazard(
                        level=Level.parse(hazard[0]),
                        title=hazard[1],
                        device="hh-01",
                        metric=None,
                        actor=who,
                        at=record.at,
                        ref=f"handheld:hh-01:{record.id}",
                    )
                    if new:
                        self.desk.adopt(ticket, now)
                store_record(self.store, "hh-01", record, flags(self.cfg, record), ticket, now)

        self.actions.append((when, act))

    def handover(self, when: int, a: str, b: str, note: str) -> None:
        self.actions.append((when, lambda now: self.desk.handover(a, b, note, now)))

    # --- the clock ----------------------------------------------------------------------

    def run(self, start: int, end: int) -> None:
        self.actions.sort(key=lambda a: a[0])
        pending = list(self.actions)
        devices = ("rg-01", "rg-02", "wl-01", "cm-01")
        for ts in range(start, end, STEP):
            batch = []
            for d in devices:
                if d == OUTAGE[0] and OUTAGE[1] <= ts < OUTAGE[2]:
                    continue
                if d.startswith("rg"):
                    batch.append(Reading(d, "rain_mm", ts, rain(d, ts)))
                elif d == "wl-01":
                    batch.append(Reading(d, "level_m", ts, level(ts)))
                else:
                    batch.append(
                        Reading(d, "crack_mm", ts, 600.0 if ts == BAD_CRACK else crack(ts))
                    )
                if ts >= at(7, 1):
                    self.script.readings[d] = self.script.readings.get(d, 0) + 1
            self.ingestor.commit(Batch(readings=batch), ts + 1000, device_states=False)
            self.ingestor.tick(ts + 2000)
            while pending and pending[0][0] < ts + STEP:
                when, act = pending.pop(0)
                act(when)


def build(folder: Path) -> Month:
    """The whole script: the end of June (the month compared with), then July."""
    m = Month(folder)
    H = m.hazard
    # June 29: a blue warning at the slope, acknowledged by its grid member in 5 minutes
    m.ack(at(6, 29, 10, 50), "slope", "li")
    m.lift(at(6, 29, 14), "slope")
    m.steps(
        at(6, 29, 15),
        lambda: H("rg-01", "rain_mm"),
        Step.DISMISS,
        "wang",
        "leader",
        "雨量不大，巡查无险情",
    )
    # July 5: blue 14:15, yellow 14:25, orange 14:45; nobody answers the orange round: at
    # 14:55 the group and the duty officer are called; the group leader answers at 14:59
    m.ack(at(7, 5, 14, 59), "slope", "zhou")
    m.lift(at(7, 5, 20), "slope")
    m.steps(at(7, 5, 15, 20), lambda: H("rg-01", "rain_mm"), Step.CONFIRM, "zhao", "duty_officer")
    m.steps(
        at(7, 5, 16, 20),
        lambda: H("rg-01", "rain_mm"),
        Step.CONTROL,
        "li",
        "grid_member",
        "拉警戒线，转移3户",
    )
    ticket_0705: list[int] = []
    m.actions.append((at(7, 5, 16, 21), lambda now: ticket_0705.append(H("rg-01", "rain_mm"))))
    m.steps(at(7, 6, 10), lambda: ticket_0705[0], Step.RECTIFY, "li", "grid_member", "疏通排水沟")
    m.steps(at(7, 8, 10), lambda: ticket_0705[0], Step.CLOSE, "wang", "leader", "核销")
    # July 10: the water-level gauge is silent 08:00-20:00 (a device-fault ticket)
    # July 18: blue from the rain at the river, yellow from the level at 11:00; the river's
    # grid member answers the yellow round after 7 minutes
    m.ack(at(7, 18, 11, 7), "river", "liu")
    m.lift(at(7, 18, 16), "river")
    m.steps(
        at(7, 18, 12),
        lambda: H("rg-02", "rain_mm"),
        Step.DISMISS,
        "wang",
        "leader",
        "雨量计受树枝遮挡，误报",
    )
    m.steps(at(7, 18, 12), lambda: H("wl-01", "level_m"), Step.CONFIRM, "zhao", "duty_officer")
    # (the level's hazard is never controlled: its 24 h deadline passes on the 19th)
    # July 22: orange at the slope within the hour; its grid member answers in 3 minutes
    m.ack(at(7, 22, 9, 43), "slope", "li")
    m.lift(at(7, 22, 13), "slope")
    m.steps(at(7, 22, 9, 50), lambda: H("rg-01", "rain_mm"), Step.CONFIRM, "zhao", "duty_officer")
    # July 25 23:00 - 26 01:00: yellow at the slope; nobody answers the yellow round until
    # the escalation (30 min) reaches the group, who answers 20 minutes later
    m.ack(at(7, 26, 0, 5), "slope", "zhou")
    m.lift(at(7, 26, 6), "slope")
    # patrols: 李明 daily at the slope on the 1st-10th (one record skips an item, two find
    # something), 刘芳 at the river each Monday; one of 李明's records reports a hazard
    for day in range(1, 11):
        items = ["cracks", "drainage"] if day == 3 else ["cracks", "drainage", "signs"]
        m.patrol(
            at(7, day, 9),
            "li",
            "slope",
            "slope-daily",
            items,
            abnormal=1 if day in (4, 9) else 0,
            hazard=("yellow", "后山东侧新增裂缝") if day == 9 else None,
        )
    for day in (6, 13, 20, 27):
        m.patrol(at(7, day, 15), "刘芳", "river", "river-daily", ["dyke", "gauge"])
    m.handover(at(7, 5, 20), "zhao", "qian", "下溪村后山橙色预警已解除，隐患管控中")
    m.handover(at(7, 6, 8), "qian", "zhao", "夜间平稳")
    m.run(at(6, 28), at(8, 1))
    return m


# --- a month of 1-minute data from ten devices, for timing the report ---------------------


def minute_month(folder: Path, n: int = 10) -> Config:
    """Ten devices (rain, water level, crack meter in turn; each with its battery) reporting
    every minute for July: 2 × 44,640 readings each, written straight to the store."""
    kinds = [
        ("rain_gauge", "rain_mm", '{ unit = "mm", min = 0, max = 50 }', "slope"),
        ("water_level", "level_m", '{ unit = "m", min = 0, max = 20 }', "river"),
        ("crack_meter", "crack_mm", '{ unit = "mm", min = 0, max = 500 }', "slope"),
    ]
    blocks = []
    for i in range(n):
        kind, metric, spec, point = kinds[i % 3]
        blocks.append(
            f'[[devices]]\nid = "d{i:02d}"\nname = "设备{i:02d}"\nkind = "{kind}"\n'
            f'point = "{point}"\ninterval_s = 60\nmetrics.{metric} = {spec}\n'
            f'metrics.battery_v = {{ unit = "V", min = 0, max = 15 }}\n'
        )
    cfg = station(folder, "\n".join(blocks), RULES.replace(SCOPE, ""))
    store = StationStore(cfg.database.path)
    for d in cfg.devices:
        metric = next(m for m in d.metrics if m != "battery_v")
        with store.transaction():
            store.insert_readings(
                r
                for ts in range(at(7, 1), at(8, 1), MIN)
                if not (d.id == "d01" and OUTAGE[1] <= ts < OUTAGE[2])
                for r in (
                    Reading(
                        d.id,
                        metric,
                        ts,
                        rain(d.id.replace("d00", "rg-01"), ts) / 5
                        if metric == "rain_mm"
                        else level(ts)
                        if metric == "level_m"
                        else crack(ts),
                    ),
                    Reading(d.id, "battery_v", ts, 12.6),
                )
            )
    store.close()
    return cfg


if __name__ == "__main__":  # python -m tests.unit.reports.report_month [FOLDER]
    import sqlite3
    import sys
    import tempfile
    import time

    from gateway.reports.documents import ruleset_of
    from gateway.reports.monthly import monthly
    from gateway.reports.pdf import html_to_pdf
    from gateway.reports.period import month_period
    from gateway.reports.render import monthly_html

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = minute_month(folder)
    conn = sqlite3.connect(f"file:{cfg.database.path}?mode=ro", uri=True)
    count = conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    print(
        f"{count:,} readings of {len(cfg.devices)} devices written in {time.perf_counter() - t0:.1f} s"
    )
    t1 = time.perf_counter()
    figures = monthly(conn, cfg, month_period("2026-07"), at(8, 2), ruleset_of(cfg))
    t2 = time.perf_counter()
    html = monthly_html(figures, cfg)
    t3 = time.perf_counter()
    data = html_to_pdf(html)
    t4 = time.perf_counter()
    print(
        f"figures {t2 - t1:.2f} s (with the previous month), HTML with charts {t3 - t2:.2f} s, "
        f"PDF {t4 - t3:.2f} s; {len(html):,} bytes of HTML, {len(data):,} bytes of PDF"
    )
