"""A rainstorm through the demo station's calling policy, on a fake clock, through the
real store and desk: the far ends answer as the demo's modem scenarios do. Exactly the
expected rounds, voice attempts (redials) and escalations come out, and nobody gets a
second message of a channel in a round."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.devtools.demo import DEMO_PHONES, demo_config
from gateway.ingest.commit import Ingestor
from gateway.reports import loop
from gateway.reports.period import month_period
from gateway.tickets.desk import Desk
from gateway.tickets.records import read_attempts, read_calls, read_deliveries
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.faults import FaultSpec
from rules.model import DeviceInfo, ThresholdRule

S = 1000
T0 = 1_780_000_000_000
RAIN = ThresholdRule(
    "burst",
    "短时强降雨",
    "rain_mm",
    "above",
    ((Level.BLUE, 2.0), (Level.YELLOW, 5.0), (Level.ORANGE, 8.0)),
)
# the storm of firmware_stubs/scenarios/rainstorm.toml, seconds -> value
STORM = {
    "rg-01": {10: 2.6, 24: 5.6, 38: 8.6, 50: 9.4},
    "rg-02": {24: 2.2, 46: 4.0},
}


def test_the_demo_policy_gives_exactly_the_expected_rounds_redials_and_escalations(
    tmp_path: Path,
) -> None:
    cfg = demo_config(tmp_path, 18000, 1883, modem_port="/dev/null")
    store = StationStore(cfg.database.path)
    store.register_devices(["rg-01", "rg-02"])
    devices = {
        "rg-01": DeviceInfo("rg-01", "xiaxi-slope"),
        "rg-02": DeviceInfo("rg-02", "shangping-river"),
    }
    faults = {(d, "rain_mm"): FaultSpec(0, 50) for d in devices}
    desk = Desk(store, cfg)
    ing = Ingestor(store, RuleSet([RAIN], devices, faults), desk)
    far_end = {k: list(v) for k, v in DEMO_PHONES.items()}
    dialled: list[tuple[int, str, str]] = []  # (second, phone, outcome)
    for sec in range(0, 121):
        now = T0 + sec * S
        readings = [
            Reading(dev, "rain_mm", now, v)
            for dev, at in STORM.items()
            for t, v in at.items()
            if t == sec
        ]
        if readings:
            ing.commit(Batch(readings=readings), now=now)
        ing.tick(now)
        for d in desk.due_deliveries(now, set()):  # the channels, answering at once
            if d.channel != "voice":
                desk.delivered(d.id, None, now, 6)
                continue
            if d.id in desk.stopped:
                desk.delivered(d.id, "not dialled", now, 6, outcome="stopped")
                continue
            left = far_end.get(d.target, [])
            outcome = left.pop(0) if left else "no_answer"
            dialled.append((sec, d.target, outcome))
            if outcome == "confirm":
                desk.acknowledge(d.ticket_id, d.target, "voice", "按1确认", now)
                desk.delivered(d.id, None, now, 6, outcome="confirmed")
            else:
                desk.delivered(d.id, outcome, now, 6, outcome=outcome)

    li, liu, wu = "13800000001", "13800000011", "13800000008"
    assert dialled == [
        (12, li, "no_answer"),  # round 1 blue: the voice call 2 s after the SMS
        (15, li, "confirm"),  # the redial, 3 s later: 按1确认
        (26, li, "confirm"),  # round 2 yellow
        (26, liu, "no_answer"),  # 上坪: 刘芳 never answers
        (29, liu, "no_answer"),  # redial 1
        (32, liu, "no_answer"),  # redial 2, the last
        (38, li, "confirm"),  # round 3 orange: at once; the duty officer's call not needed
        (56, wu, "confirm"),  # 刘芳 not reached after 30 s: the village head 吴建, 2 s later
    ]
    tickets = {t.point: t for t in store.tickets() if t.kind == "warning"}
    xiaxi, shangping = tickets["xiaxi-slope"], tickets["shangping-river"]
    assert [(c.round, c.name, c.why, c.outcome) for c in read_calls(store, xiaxi.id)] == [
        (1, "李明", "issued", "acknowledged"),
        (2, "李明", "raised", "acknowledged"),
        (3, "李明", "raised", "acknowledged"),
        (3, "赵敏", "duty", "answered"),
    ]
    assert [(c.round, c.name, c.why, c.outcome) for c in read_calls(store, shangping.id)] == [
        (1, "刘芳", "issued", "escalated"),
        (1, "吴建", "escalated", "acknowledged"),
        (1, "赵敏", "duty", "answered"),
    ]
    # one message per person per round per channel
    for tk in (xiaxi, shangping):
        calls = {c.id: c for c in read_calls(store, tk.id)}
        per = Counter(
            (calls[d.call_id].round, d.target, d.channel)
            for d in read_deliveries(store, ticket_id=tk.id)
            if d.call_id is not None
        )
        assert per and max(per.values()) == 1, per
    # every attempt stored; the duty officer's voice call was cancelled before dialling
    att = [(a.person, a.channel, a.outcome) for a in read_attempts(store, xiaxi.id)]
    assert ("zhao-zb", "voice", "stopped") in att
    assert att.count(("li-wg", "sms", "sent")) == 3
    v = [
        (a.started_at - T0) // S for a in read_attempts(store, shangping.id) if a.channel == "voice"
    ]
    assert v == [26, 29, 32, 56, 56]  # 刘芳 ×3; 吴建 confirms; 赵敏's call stopped
    # the monthly report's time to answer per channel and attempts per channel
    period = month_period("2026-05")
    tks = loop.read_tickets(store.conn, period.end)
    figures = loop.calls_of(store.conn, period, loop.read_events(store.conn, [t.id for t in tks]))
    assert list(figures.by_channel) == ["voice"] and figures.by_channel["voice"].n == 4
    assert figures.attempts["voice"] == {"no_answer": 4, "confirmed": 4, "stopped": 2}
    assert figures.escalations == 1
    store.close()


def test_lowering_stops_the_calls_and_says_so(tmp_path: Path) -> None:
    cfg = demo_config(tmp_path, 18000, 1883, modem_port="/dev/null")
    store = StationStore(cfg.database.path)
    store.register_devices(["rg-01"])
    desk = Desk(store, cfg)
    devices = {"rg-01": DeviceInfo("rg-01", "xiaxi-slope")}
    ing = Ingestor(store, RuleSet([RAIN], devices, {}), desk)
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0, 8.6)]), now=T0)  # orange
    [w] = [t for t in store.tickets() if t.kind == "warning"]
    voice = [d.id for d in read_deliveries(store, ticket_id=w.id) if d.channel == "voice"]
    assert len(voice) == 2  # 李明 and the duty officer 赵敏, at once
    desk.lower(w.id, Level.BLUE, "zhao-zb", "duty_officer", T0 + 1 * S)
    rows = read_deliveries(store, ticket_id=w.id)
    assert {d.status for d in rows if d.channel == "voice"} == {"cancelled"}
    assert set(voice) <= set(desk.stopped)  # a call in progress is hung up
    told = [(d.target, d.body["text"]) for d in rows if d.channel == "sms" and d.body.get("stop")]
    said = "【清水镇应急管理站】下溪村后山滑坡 橙色预警已降为蓝色预警，本轮叫应停止，无需回复"
    assert sorted(told) == [("13800000001", said), ("13800000006", said)]
    assert [c.outcome for c in read_calls(store, w.id)] == ["stopped", "stopped"]
    ing.tick(T0 + 999 * S)  # nothing is due any more
    assert len(read_calls(store, w.id)) == 2
    store.close()


def test_a_restart_neither_forgets_nor_repeats_a_redial_or_an_escalation(tmp_path: Path) -> None:
    cfg = demo_config(tmp_path, 18000, 1883, modem_port="/dev/null")
    devices = {"rg-02": DeviceInfo("rg-02", "shangping-river")}

    def gateway() -> tuple[StationStore, Desk, Ingestor]:
        store = StationStore(cfg.database.path)
        store.register_devices(["rg-02"])
        desk = Desk(store, cfg)
        return store, desk, Ingestor(store, RuleSet([RAIN], devices, {}), desk)

    store, desk, ing = gateway()
    ing.commit(Batch(readings=[Reading("rg-02", "rain_mm", T0, 2.2)]), now=T0)  # blue
    for d in desk.due_deliveries(T0, set()):  # SMS, MQTT, the duty room: sent
        desk.delivered(d.id, None, T0, 6)
    assert desk.due_deliveries(T0 + 2 * S - 1, set()) == []  # the call waits its 2 s
    [v] = desk.due_deliveries(T0 + 2 * S, set())
    assert v.channel == "voice"
    desk.delivered(v.id, "no_answer", T0 + 6 * S, 6, outcome="no_answer")  # rang 4 s
    store.close()

    store, desk, ing = gateway()  # restarted: the redial is 3 s after the call ended
    assert [d.id for d in desk.due_deliveries(T0 + 9 * S - 1, set())] == []
    assert [d.id for d in desk.due_deliveries(T0 + 9 * S, set())] == [v.id]
    ing.tick(T0 + 29 * S)
    assert len(read_calls(store, v.ticket_id)) == 1
    store.close()

    store, desk, ing = gateway()  # restarted long after the not-reached time: fires once
    ing.tick(T0 + 200 * S)
    ing.tick(T0 + 201 * S)
    calls = [(c.name, c.why) for c in read_calls(store, v.ticket_id)]
    assert calls == [("刘芳", "issued"), ("吴建", "escalated"), ("赵敏", "duty")]
    # 刘芳's redials left are not needed: she counts as not reached now
    left = [d for d in read_deliveries(store, ticket_id=v.ticket_id) if d.id == v.id]
    assert [d.status for d in left] == ["cancelled"]
    store.close()
