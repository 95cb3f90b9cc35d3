"""The ticket lifecycle, table-driven: every step by role, from every state."""

from __future__ import annotations

import pytest

from gateway.config.loop import TicketsSection
from gateway.config.station import Config
from gateway.core.model import Level
from gateway.tickets.desk import policy_of
from gateway.tickets.lifecycle import Actor, Done, Refused, Step, Subject, take

CFG = Config.model_validate(
    {
        "station": {"id": "s", "name": "站"},
        "database": {"path": "x.db"},
        "tickets": {"deadlines": {"control": {"red": "2h"}, "close": {"red": "1d"}}},
    }
)
POLICY = policy_of(CFG)
T = 1_780_000_000_000
R = Level.RED

ALLOWED = [
    # kind, state, step, role -> new state
    ("hazard", "discovered", "confirm", "duty_officer", "confirmed"),
    ("hazard", "discovered", "confirm", "leader", "confirmed"),
    ("hazard", "discovered", "confirm", "technician", "confirmed"),
    ("hazard", "confirmed", "control", "grid_member", "controlled"),
    ("hazard", "confirmed", "control", "duty_officer", "controlled"),
    ("hazard", "controlled", "rectify", "grid_member", "rectified"),
    ("hazard", "controlled", "rectify", "technician", "rectified"),
    ("hazard", "rectified", "close", "leader", "closed"),
    ("hazard", "discovered", "dismiss", "leader", "dismissed"),
    ("hazard", "controlled", "dismiss", "technician", "dismissed"),
    ("device_fault", "discovered", "confirm", "technician", "confirmed"),
    ("device_fault", "confirmed", "rectify", "technician", "rectified"),
    ("device_fault", "rectified", "close", "technician", "closed"),
    ("device_fault", "discovered", "dismiss", "technician", "dismissed"),
    ("warning", "issued", "lift", "leader", "lifted"),
    ("warning", "issued", "lift", "duty_officer", "lifted"),
]

REFUSED = [
    # kind, state, step, role -> why
    ("hazard", "discovered", "confirm", "grid_member", "role"),
    ("hazard", "discovered", "control", "grid_member", "state"),
    ("hazard", "discovered", "rectify", "technician", "state"),
    ("hazard", "discovered", "close", "leader", "state"),
    ("hazard", "confirmed", "control", "technician", "role"),
    ("hazard", "controlled", "rectify", "duty_officer", "role"),
    ("hazard", "rectified", "close", "duty_officer", "role"),
    ("hazard", "rectified", "close", "grid_member", "role"),
    ("hazard", "rectified", "close", "technician", "role"),
    ("hazard", "discovered", "dismiss", "grid_member", "role"),
    ("hazard", "closed", "confirm", "leader", "state"),
    ("hazard", "closed", "dismiss", "leader", "state"),
    ("hazard", "dismissed", "confirm", "leader", "state"),
    ("hazard", "discovered", "lift", "leader", "state"),
    ("device_fault", "discovered", "confirm", "grid_member", "role"),
    ("device_fault", "confirmed", "control", "technician", "role"),  # no such step for faults
    ("device_fault", "rectified", "close", "duty_officer", "role"),
    ("warning", "issued", "lift", "grid_member", "role"),
    ("warning", "issued", "dismiss", "leader", "state"),
    ("warning", "issued", "confirm", "leader", "state"),
    ("warning", "lifted", "lift", "leader", "state"),
]


@pytest.mark.parametrize(("kind", "state", "step", "role", "to"), ALLOWED)
def test_allowed_steps(kind: str, state: str, step: str, role: str, to: str) -> None:
    out = take(
        Subject(kind, state, R, "someone else"), Step(step), Actor("甲", role), "原因", T, POLICY
    )
    assert isinstance(out, Done) and out.state == to


@pytest.mark.parametrize(("kind", "state", "step", "role", "why"), REFUSED)
def test_refused_steps(kind: str, state: str, step: str, role: str, why: str) -> None:
    out = take(Subject(kind, state, R), Step(step), Actor("甲", role), "原因", T, POLICY)
    assert isinstance(out, Refused) and out.why == why, out


def test_write_off_by_the_person_who_rectified_is_refused() -> None:
    subject = Subject("hazard", "rectified", R, rectified_by="王五")
    out = take(subject, Step.CLOSE, Actor("王五", "leader"), None, T, POLICY)
    assert isinstance(out, Refused) and out.why == "same_person"
    assert "second person" in out.message
    assert isinstance(take(subject, Step.CLOSE, Actor("赵六", "leader"), None, T, POLICY), Done)


@pytest.mark.parametrize("note", [None, "", "   "])
def test_dismiss_and_lift_need_a_reason(note: str | None) -> None:
    for kind, state, step in (
        ("hazard", "discovered", Step.DISMISS),
        ("warning", "issued", Step.LIFT),
    ):
        out = take(Subject(kind, state, R), step, Actor("甲", "leader"), note, T, POLICY)
        assert isinstance(out, Refused) and out.why == "reason"


def test_stage_deadlines_per_level() -> None:
    out = take(
        Subject("hazard", "discovered", R), Step.CONFIRM, Actor("甲", "leader"), None, T, POLICY
    )
    assert isinstance(out, Done) and out.due_at == T + 2 * 3_600_000  # control within 2 h of red
    blue = take(
        Subject("hazard", "discovered", Level.BLUE),
        Step.CONFIRM,
        Actor("甲", "leader"),
        None,
        T,
        POLICY,
    )
    assert isinstance(blue, Done) and blue.due_at is None  # no deadline configured for blue


def test_roles_are_configuration() -> None:
    cfg = CFG.model_copy(update={"tickets": TicketsSection(roles={"close": ["duty_officer"]})})
    policy = policy_of(cfg)
    subject = Subject("hazard", "rectified", R)
    assert isinstance(take(subject, Step.CLOSE, Actor("甲", "duty_officer"), None, T, policy), Done)
    assert isinstance(take(subject, Step.CLOSE, Actor("甲", "leader"), None, T, policy), Refused)
    # steps not named keep their defaults
    confirm = take(
        Subject("hazard", "discovered", R), Step.CONFIRM, Actor("甲", "technician"), None, T, policy
    )
    assert isinstance(confirm, Done)
