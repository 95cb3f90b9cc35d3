"""Handheld recorders over real Mosquitto and a socat dock: stored once, flagged, hazards."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from firmware_stubs import handheld_device as hh
from firmware_stubs.cigem_device import publish
from tests.conftest import Mosquitto
from tests.integration.field import PtyPair, config, gateway, rows, until

pytestmark = pytest.mark.integration

STATION = """
[station]
id = "t"
name = "测试站"

[[villages]]
id = "v"
name = "下溪村"

[[points]]
id = "xiaxi-slope"
name = "后山滑坡"
village = "v"
kind = "slope"

[[checklists]]
id = "slope-daily"
name = "滑坡日常巡查"
point_kinds = ["slope"]
items = [
  {{ id = "cracks", text = "坡面有无新增裂缝" }},
  {{ id = "drainage", text = "排水沟是否畅通" }},
  {{ id = "signs", text = "警示牌是否完好" }},
]

[[devices]]
id = "hh-01"
name = "网格员巡查记录仪"
kind = "handheld"
point = "xiaxi-slope"
transport = "handheld"
metrics.battery_v = {{ unit = "V", min = 0, max = 5 }}

[[serial_ports]]
id = "dock"
path = "{dock}"
protocol = "handheld_dock"
device = "hh-01"

[broker]
port = {broker}
client_id = "gw-hh"

[database]
path = "station.db"

[http]
port = 0
"""


def test_records_stored_once_flagged_and_hazard_opens_one_ticket(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    pair = PtyPair(tmp_path / "dock-gw", tmp_path / "dock-dev")
    cfg = config(tmp_path, STATION.format(broker=mosquitto.port, dock=pair.a))
    db = cfg.database.path
    t0 = int(time.time() * 1000) - 7_200_000
    r1 = hh.record(1, t0)
    r2 = hh.record(
        2,
        t0 + 60_000,
        results={"cracks": "abnormal", "drainage": "ok", "signs": "ok"},
        hazard=("yellow", "后山新增裂缝"),
        text="东侧新增裂缝约2cm",
    )
    r3 = hh.record(3, t0 + 120_000, checklist="river-weekly")
    r4 = hh.record(4, t0 + 180_000, results={"cracks": "ok", "fence": "ok"})
    r5 = hh.record(5, t0 + 240_000)
    topic = "stations/t/hh-01/patrol"

    async def main() -> str:
        pair.start()
        try:
            async with gateway(cfg) as running:
                assert (
                    running.field is not None and running.field.drivers.get("handheld") is not None
                )
                driver = running.field.drivers.get("handheld")
                await until(lambda: driver.source.connected, "subscribed")
                await asyncio.to_thread(
                    publish,
                    "127.0.0.1",
                    mosquitto.port,
                    "hh-01",
                    [
                        hh.mqtt_payload([r1, r2, r3]),
                        b'{"id": 1}',
                        hh.mqtt_payload([r2, r4]),
                    ],  # offline spell: r2 again, then r4
                    topic,
                )
                await until(lambda: len(rows(db, "SELECT 1 FROM patrol_records")) == 4, "4 records")
                await until(
                    lambda: driver.lines.get("dock") and driver.lines["dock"].is_open, "dock open"
                )
                reply = await asyncio.to_thread(
                    hh.dock_send, str(pair.b), hh.dock_lines([r5, r1], garbage=True)
                )
                return reply
        finally:
            pair.kill()

    reply = asyncio.run(main())
    assert reply == "OK 2"
    got = {rid: json.loads(f) for rid, f in rows(db, "SELECT record_id, flags FROM patrol_records")}
    assert got == {
        "HH01-000001": [],
        "HH01-000002": [],
        "HH01-000003": ["unknown checklist 'river-weekly'"],
        "HH01-000004": [
            "items not in checklist 'slope-daily': fence",
            "checklist items not reported: drainage, signs",
        ],
        "HH01-000005": [],
    }
    tickets = rows(db, "SELECT id, kind, level, title, device, rule FROM tickets")
    assert [t[1:] for t in tickets] == [("hazard", 2, "后山新增裂缝", "hh-01", None)]
    events = rows(db, "SELECT kind, actor, at, note FROM ticket_events")
    assert events == [("opened", "张三", t0 + 60_000, "东侧新增裂缝约2cm")]
    assert rows(db, "SELECT ticket_id FROM patrol_records WHERE record_id = 'HH01-000002'") == [
        (tickets[0][0],)
    ]
    reasons = [r for (r,) in rows(db, "SELECT reason FROM quarantine ORDER BY id")]
    assert len(reasons) == 2
    assert reasons[0] == (
        "hh-01: patrol record: id: Input should be a valid string; by: Field required; "
        "at: Field required"
    )
    assert reasons[1].startswith("hh-01: record line: (top level): Invalid JSON")
    assert reasons[1].endswith("; 29 bytes discarded at stream offset 231")
