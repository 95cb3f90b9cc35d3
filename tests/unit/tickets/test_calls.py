"""The call-and-acknowledge loop with a fake clock: planner alone, then through the store
with a restart between two escalation steps."""

from __future__ import annotations

from pathlib import Path

from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.ingest.commit import Ingestor
from gateway.tickets import calls
from gateway.tickets.calls import Callee, GridStep
from gateway.tickets.desk import Desk
from gateway.tickets.people import People
from gateway.tickets.records import read_calls, read_deliveries, read_warn_state
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.faults import FaultSpec
from rules.model import DeviceInfo, ThresholdRule
from tests.unit.tickets.loop_helpers import MIN, T0, station

B, Y, O, R = Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED
A, G, V = Callee("a", "甲", "1"), Callee("g", "乙", "2"), Callee("v", "丙", "3")
DUTY = Callee("d", "值班", "9")
CHAIN = [GridStep("point:p", (A,)), GridStep("group:g", (G,)), GridStep("village:v", (V,))]


def who(plan: calls.Plan | None) -> list[tuple[str, str]]:
    assert plan is not None
    return [(c.callee.person, c.why) for c in plan.calls]


def test_blue_calls_up_the_grid_once_per_person_then_leaves_the_list_with_the_duty_room() -> None:
    """A fake clock steps the pure planner: each wave calls whom the policy names, nobody
    twice in a round; the wave that finds nobody new exhausts the warning."""
    a2 = Callee("a", "甲", "1", deputy=Callee("a2", "甲副", "5"))
    chain = [GridStep("point:p", (a2,)), *CHAIN[1:]]
    plan = calls.issue(B, T0, chain, DUTY)
    assert who(plan) == [("a", "issued")]
    assert plan.state.due_at == T0 + 60 * MIN
    assert calls.on_tick(plan.state, T0 + 60 * MIN - 1, chain, DUTY) is None
    called = {"a"}
    steps = [  # (minutes, not reached, expected wave, exhausted)
        (60, [a2], [("a2", "deputy"), ("g", "escalated"), ("d", "duty")], False),
        (120, [G, DUTY], [("v", "escalated")], False),
        (180, [V], [], True),  # nobody new: no re-call of the same people
    ]
    state = plan.state
    for minutes, unreached, expected, exhausted in steps:
        nxt = calls.on_tick(
            state, T0 + minutes * MIN, chain, DUTY, not_reached=unreached, called=called
        )
        assert nxt is not None
        assert who(nxt) == expected
        assert nxt.state.exhausted is exhausted
        called |= {c.callee.person for c in nxt.calls}
        state = nxt.state
    assert state.due_at is None
    assert calls.on_tick(state, T0 + 999 * MIN, chain, DUTY, called=called) is None


def test_leaders_are_last_and_the_policy_decides_who_comes_next() -> None:
    boss = Callee("w", "镇长", "7")
    pol = {lv: calls.LevelPolicy(2 * MIN, 0, escalate=("up", "leader")) for lv in Level}
    plan = calls.issue(R, T0, CHAIN, DUTY, pol)
    assert who(plan) == [("a", "issued")]  # duty_at_once off in this policy
    up = calls.on_tick(plan.state, T0 + 2 * MIN, CHAIN, DUTY, pol, called={"a"}, leaders=[boss])
    assert who(up) == [("g", "escalated"), ("w", "leader")]
    assert up is not None and up.state.due_at == T0 + 4 * MIN


def test_orange_and_red_call_the_duty_officer_at_once_with_their_deadlines() -> None:
    for level, minutes in ((O, 10), (R, 5)):
        plan = calls.issue(level, T0, CHAIN, DUTY)
        assert who(plan) == [("a", "issued"), ("d", "duty")]
        assert plan.state.due_at == T0 + minutes * MIN


def test_an_acknowledgement_stops_the_escalation() -> None:
    plan = calls.issue(Y, T0, CHAIN, DUTY)
    up = calls.on_tick(plan.state, T0 + 30 * MIN, CHAIN, DUTY)
    assert up is not None
    acked = calls.acknowledge(up.state, T0 + 31 * MIN, "乙", "sms")
    assert calls.on_tick(acked, T0 + 999 * MIN, CHAIN, DUTY) is None


def test_a_raise_starts_a_new_round_from_the_point() -> None:
    plan = calls.issue(B, T0, CHAIN, DUTY)
    up = calls.on_tick(plan.state, T0 + 60 * MIN, CHAIN, DUTY)
    assert up is not None
    raised = calls.raise_level(up.state, R, T0 + 61 * MIN, CHAIN, DUTY)
    assert (raised.state.round, raised.state.step) == (2, 0)
    assert who(raised) == [("a", "raised"), ("d", "duty")]


def test_people_chain_skips_empty_levels_and_deputies_stand_in(tmp_path: Path) -> None:
    people = People(station(tmp_path))
    chain = people.chain("slope")
    assert [(g.grid, [c.person for c in g.callees]) for g in chain] == [
        ("point:slope", ["li"]),
        ("group:g1", ["zhou"]),
        ("village:xiaxi", ["he"]),  # 陈村长 is absent: 何副村长 stands in
        ("township", ["wang"]),
    ]
    assert chain[2].callees[0].why == "deputy for chen"
    duty = people.on_duty(T0)
    assert duty is not None and duty.person == "zhao"


RAIN = ThresholdRule(
    "rain", "短时强降雨", "rain_mm", "above", ((B, 2.0), (Y, 5.0), (O, 8.0), (R, 12.0))
)


def gateway(tmp_path: Path) -> Ingestor:
    cfg = station(tmp_path)
    store = StationStore(cfg.database.path)
    store.register_devices(["rg-01"])
    devices = {"rg-01": DeviceInfo("rg-01", "slope")}
    faults = {("rg-01", "rain_mm"): FaultSpec(0, 100)}
    return Ingestor(store, RuleSet([RAIN], devices, faults), Desk(store, cfg))


def test_escalation_survives_a_restart_without_calling_twice(tmp_path: Path) -> None:
    ing = gateway(tmp_path)
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0, 6.0)]), now=T0)  # yellow
    store = ing.store
    [warning] = [t for t in store.tickets() if t.kind == "warning"]
    assert (warning.level, warning.state, warning.point, warning.code) == (
        Y,
        "issued",
        "slope",
        f"{warning.id:04d}",
    )
    assert [(c.person, c.why) for c in read_calls(store, warning.id)] == [("li", "issued")]
    ing.tick(T0 + 30 * MIN)  # deadline (yellow 30 min): group and duty officer
    assert [(c.person, c.why, c.outcome) for c in read_calls(store, warning.id)] == [
        ("li", "issued", "escalated"),
        ("zhou", "escalated", "pending"),
        ("zhao", "duty", "pending"),
    ]
    ing.tick(T0 + 31 * MIN)  # nothing new before the next deadline
    assert len(read_calls(store, warning.id)) == 3
    store.close()

    # a restart well after the second deadline: the overdue step fires once
    again = gateway(tmp_path)
    again.tick(T0 + 75 * MIN)
    again.tick(T0 + 75 * MIN + 1000)
    rows = [(c.person, c.why) for c in read_calls(again.store, warning.id)]
    assert rows == [
        ("li", "issued"),
        ("zhou", "escalated"),
        ("zhao", "duty"),
        ("he", "escalated"),  # the village (its deputy); the duty officer not again
    ]
    state = read_warn_state(again.store, warning.id)
    assert state is not None and state.step == 2 and state.due_at == T0 + 105 * MIN

    # an acknowledgement at level two (the village's deputy) stops it
    desk = again.desk
    assert desk is not None
    acked = desk.acknowledge(warning.id, "13800000004", "sms", "收到", T0 + 80 * MIN)
    assert acked.acknowledged_by == "何副村长"
    again.tick(T0 + 500 * MIN)
    outcomes = [(c.person, c.outcome) for c in read_calls(again.store, warning.id)]
    assert outcomes == [
        ("li", "escalated"),
        ("zhou", "escalated"),
        ("zhao", "escalated"),
        ("he", "acknowledged"),
    ]
    # every call has its deliveries recorded: MQTT to each person, the dashboard alarm
    channels = {d.channel for d in read_deliveries(again.store, ticket_id=warning.id)}
    assert channels == {"mqtt", "dashboard"}


def test_device_faults_never_call_responders(tmp_path: Path) -> None:
    ing = gateway(tmp_path)
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0, 150.0)]), now=T0)  # out of range
    kinds = [t.kind for t in ing.store.tickets()]
    assert kinds == ["device_fault"]
    assert read_calls(ing.store, ing.store.tickets()[0].id) == []


def test_a_falling_rule_suggests_lowering_and_a_person_decides(tmp_path: Path) -> None:
    ing = gateway(tmp_path)
    for i, v in enumerate([9.0, 3.0, 0.0]):
        ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0 + i * MIN, v)]), now=T0 + i * MIN)
    [w] = [t for t in ing.store.tickets() if t.kind == "warning"]
    assert (w.level, w.suggestion) == (O, "lift")
    events = [(e.kind, e.note) for e in ing.store.events(w.id) if e.kind == "suggest_lower"]
    assert events == [("suggest_lower", "lower:blue"), ("suggest_lower", "lift")]


def test_a_rule_falling_while_another_holds_the_point_suggests_only_that_far(
    tmp_path: Path,
) -> None:
    cfg = station(tmp_path)
    store = StationStore(cfg.database.path)
    crack = ThresholdRule("crack", "裂缝", "crack_mm", "above", ((B, 1.0), (Y, 3.0)))
    devices = {"rg-01": DeviceInfo("rg-01", "slope"), "cm-01": DeviceInfo("cm-01", "slope")}
    ing = Ingestor(store, RuleSet([RAIN, crack], devices), Desk(store, cfg))
    rows = [("rg-01", "rain_mm", 9.0), ("cm-01", "crack_mm", 3.5), ("rg-01", "rain_mm", 0.0)]
    for i, (dev, metric, v) in enumerate(rows):
        ing.commit(Batch(readings=[Reading(dev, metric, T0 + i * MIN, v)]), now=T0 + i * MIN)
    [w] = [t for t in store.tickets() if t.kind == "warning"]
    assert (w.level, w.suggestion) == (O, "lower:yellow")  # the crack meter still holds yellow
    ing.commit(Batch(readings=[Reading("cm-01", "crack_mm", T0 + 5 * MIN, 0.0)]), now=T0 + 5 * MIN)
    w2 = store.ticket(w.id)
    assert w2 is not None and w2.suggestion == "lift"


def test_auto_lower_for_configured_levels(tmp_path: Path) -> None:
    cfg = station(tmp_path, tickets={"auto_lower": ["yellow"]})
    store = StationStore(cfg.database.path)
    ing = Ingestor(
        store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}), Desk(store, cfg)
    )
    for i, v in enumerate([6.0, 3.0]):
        ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0 + i * MIN, v)]), now=T0 + i * MIN)
    [w] = [t for t in store.tickets() if t.kind == "warning"]
    assert (w.level, w.suggestion, w.state) == (B, None, "issued")
    assert [e.kind for e in store.events(w.id)][-1] == "warning_lowered"


def test_device_fault_goes_to_the_technician_only(tmp_path: Path) -> None:
    cfg = station(
        tmp_path,
        notify={
            "sms": {"port": "/dev/null"},
            "sirens": [{"device": "s1", "points": ["slope"], "levels": ["blue"]}],
        },
    )
    store = StationStore(cfg.database.path)
    faults = {("rg-01", "rain_mm"): FaultSpec(0, 100)}
    ing = Ingestor(
        store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}, faults), Desk(store, cfg)
    )
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0, 150.0)]), now=T0)
    [fault] = store.tickets()
    assert fault.kind == "device_fault"
    sent = sorted((d.channel, d.target) for d in read_deliveries(store))
    assert sent == [("dashboard", "duty-room"), ("sms", "13800000007")]  # 孙技术, no siren


def test_a_person_lowers_a_warning_without_new_calls(tmp_path: Path) -> None:
    import pytest

    from gateway.core.errors import TicketConflict
    from gateway.tickets.desk import StepRefused

    ing = gateway(tmp_path)
    for i, v in enumerate([9.0, 3.0]):
        ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0 + i * MIN, v)]), now=T0 + i * MIN)
    desk = ing.desk
    assert desk is not None
    [w] = [t for t in ing.store.tickets() if t.kind == "warning"]
    before = len(read_calls(ing.store, w.id))
    with pytest.raises(StepRefused):
        desk.lower(w.id, B, "li", "grid_member", T0 + 2 * MIN)
    with pytest.raises(TicketConflict):
        desk.lower(w.id, R, "wang", "leader", T0 + 2 * MIN)
    lowered = desk.lower(w.id, B, "wang", "leader", T0 + 2 * MIN)
    assert (lowered.level, lowered.suggestion, lowered.title) == (B, None, "后山滑坡 蓝色预警")
    assert len(read_calls(ing.store, w.id)) == before
    state = read_warn_state(ing.store, w.id)
    assert state is not None and state.level == B
