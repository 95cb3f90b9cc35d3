"""What every county plan carries for the stations (gateway/county/plans.py county_part):
the county's name, people at grid `county` and its escalation deadlines, and the hash
that covers them. The expected part and hash are written out here from the county file
of tests/county_data.py and the rule in gateway/core/plans.py's docstring, not taken
from the code under test."""

from __future__ import annotations

import hashlib
import json

import pytest

from gateway.county import plans
from tests.county_data import COUNTY, config

RULES = '[[rules]]\nid = "r"\nname = "雨"\nkind = "threshold"\nmetric = "rain_mm"\nabove = { red = 9 }\n'

EXPECTED = {
    "name": "青山县应急管理局",
    "people": [
        {
            "id": "wang",
            "name": "王值班",
            "phone": "13900000001",
            "roles": ["duty_officer"],
            "grid": "county",
        },
        {
            "id": "liu",
            "name": "刘局长",
            "phone": "13900000003",
            "roles": ["leader"],
            "grid": "county",
        },
    ],
    "deadlines": {"blue": None, "yellow": 3600, "orange": 1200, "red": 600},
}


def test_a_plan_carries_the_county_part_and_its_hash_covers_it() -> None:
    assert plans.county_part(config()) == EXPECTED
    plan = plans.make_plan(config(), RULES, "all", "v1", 0, "r.toml")
    part = json.dumps(EXPECTED, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert plan.hash == hashlib.sha256(RULES.encode() + b"\n" + part.encode()).hexdigest()
    sent = json.loads(plan.value())
    assert sent == {"version": "v1", "hash": plan.hash, "rules": RULES, "county": EXPECTED}


@pytest.mark.parametrize(
    ("people", "why"),
    [
        (
            [{"id": "wang", "name": "王值班", "deputy": "nobody"}],
            "county.people[0].deputy: not one of the county's people: 'nobody'",
        ),
        (
            [{"id": "wang", "name": "王"}, {"id": "wang", "name": "王二"}],
            "county.people[1].id: duplicate id 'wang'",
        ),
    ],
)
def test_people_a_station_would_refuse_are_refused_before_publishing(
    people: list[dict[str, str]], why: str
) -> None:
    cfg = config().model_validate({**COUNTY, "people": people, "duty": []})
    with pytest.raises(plans.PlanRefused) as refused:
        plans.make_plan(cfg, RULES, "all", "v1", 0, "r.toml")
    assert why in refused.value.problems
