"""A county rules plan checked on the station (gateway/ingest/plans.py), the county's
people and deadlines it brings (gateway/tickets/people.py), and the keys a station
watches (gateway/uplinks/plans.py): table-driven, no IO."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.station import parse_config
from gateway.core.plans import plan_hash
from gateway.ingest.plans import PlanResult, check_plan, load_saved, save
from gateway.ingest.rules_loader import PlanRules, RulesLoader
from gateway.tickets.people import People
from gateway.uplinks.plans import choose, keys_for

LOCAL = """
[[rules]]
id = "rain-burst"
name = "短时强降雨"
kind = "threshold"
metric = "rain_mm"
above = { yellow = 5.0, red = 12.0 }

[[rules]]
id = "both"
name = "组合"
kind = "compound"
level = "red"
all = [{ rule = "rain-burst", level = "yellow" }]
"""
GOOD = """
[[rules]]
id = "rain-burst"
name = "短时强降雨（县）"
kind = "threshold"
metric = "rain_mm"
above = { yellow = 6.0, red = 20.0 }
"""


@pytest.fixture
def loader(tmp_path: Path) -> RulesLoader:
    (tmp_path / "rules.toml").write_text(LOCAL, encoding="utf-8")
    cfg = parse_config(
        {
            "station": {"id": "xikou", "name": "溪口镇"},
            "villages": [{"id": "v1", "name": "一村"}],
            "points": [{"id": "p1", "name": "一号点", "village": "v1"}],
            "devices": [
                {
                    "id": "rg-01",
                    "name": "雨量计",
                    "kind": "rain_gauge",
                    "point": "p1",
                    "metrics": {"rain_mm": {"unit": "mm", "min": 0, "max": 50}},
                }
            ],
            "database": {"path": "station.db"},
            "rules": {"path": "rules.toml"},
            "people": [
                {"id": "zhang", "name": "张网格", "phone": "13800000001", "grid": "village:v1"},
                {
                    "id": "wang",
                    "name": "王值班（旧号码）",
                    "phone": "13800000009",
                    "grid": "county",
                },
                {"id": "zhou", "name": "周县长", "phone": "13800000008", "grid": "county"},
            ],
        },
        tmp_path / "station.toml",
    )
    ld = RulesLoader(cfg)
    ld.load()
    assert not ld.errors, ld.errors
    return ld


COMPOUND_GONE = """
[[rules]]
id = "gone-both"
name = "组合"
kind = "compound"
level = "red"
all = [{ rule = "gone", level = "yellow" }]
"""


# the county part as `stationgw county plan push` makes it from tests/county_data.py's
# county file (gateway/county/plans.py county_part), written out by hand
COUNTY: dict[str, Any] = {
    "name": "青山县应急管理局",
    "people": [
        {
            "id": "wang",
            "name": "王值班",
            "phone": "13900000001",
            "roles": ["duty_officer"],
            "grid": "county",
            "deputy": "liu",
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


def body(
    text: str, version: str = "v1", digest: str | None = None, county: Any = None
) -> dict[str, Any]:
    out = {"version": version, "hash": digest or plan_hash(text, county), "rules": text}
    return out if county is None else {**out, "county": county}


def county_with(**change: Any) -> dict[str, Any]:
    """COUNTY with its first person changed (a key set to None is taken out)."""
    first = {k: v for k, v in {**COUNTY["people"][0], **change}.items() if v is not None}
    return {**COUNTY, "people": [first, *COUNTY["people"][1:]]}


BAD = [
    ("not an object", ["x"], "not a JSON object"),
    ("no version", {"hash": "x", "rules": GOOD}, "version: missing"),
    ("no rules", {"version": "v1", "hash": "x"}, "rules: missing"),
    ("hash of another text", body(GOOD, digest=plan_hash(LOCAL)), "hash: does not match"),
    ("not TOML", body("[[rules]\nid ="), "not valid TOML"),
    (
        "a metric this station has not",
        body(GOOD.replace('metric = "rain_mm"', 'metric = "wind_ms"')),
        "wind_ms",
    ),
    (
        "a compound rule naming a rule nobody has",
        body(GOOD + COMPOUND_GONE),
        "unknown rule",
    ),
    (
        "a rule id twice",
        body(GOOD + GOOD.replace("短时强降雨（县）", "又一条")),
        "rain-burst",
    ),
    ("a county part not an object", body(GOOD, county=["x"]), "county: not a JSON object"),
    (
        "people changed after signing",
        {**body(GOOD, county=COUNTY), "county": county_with(phone="13900000099")},
        "hash: does not match",
    ),
    (
        "a county person's phone",
        body(GOOD, county=county_with(phone="call me")),
        "county.people[0].phone",
    ),
    (
        "a county person in a village's grid",
        body(GOOD, county=county_with(grid="village:v1")),
        "county.people[0].grid: the county's people stand at grid 'county'",
    ),
    (
        "a deputy the county did not send",
        body(GOOD, county=county_with(deputy="zhang")),
        "county.people[0].deputy: not one of the county's people: 'zhang'",
    ),
    (
        "a county id that is a village's person of the station",
        body(GOOD, county=county_with(id="zhang", deputy=None)),
        "county.people[0].id: 'zhang' is 张网格 of this station's file (grid village:v1)",
    ),
    (
        "a deadline shorter than 30 s",
        body(GOOD, county={**COUNTY, "deadlines": {"red": 5}}),
        "county.deadlines.red",
    ),
    (
        "an unknown key in the county part",
        body(GOOD, county={**COUNTY, "roster": []}),
        "county.roster: unknown key",
    ),
]


@pytest.mark.parametrize(("name", "msg", "why"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_plan_is_refused_whole_and_the_running_rules_stay(
    loader: RulesLoader, name: str, msg: object, why: str
) -> None:
    before = {r.id for r in loader.ruleset().rules}
    out = check_plan(msg, "all", loader)
    assert isinstance(out, PlanResult) and not out.ok
    assert any(why in e for e in out.errors), out.errors
    assert loader.plan is None and {r.id for r in loader.ruleset().rules} == before


def test_a_good_plan_replaces_the_rules_it_names_and_keeps_the_others(
    loader: RulesLoader, tmp_path: Path
) -> None:
    out = check_plan(body(GOOD), "group.south", loader)
    assert isinstance(out, PlanRules) and out.key == "group.south"
    loader.plan = out
    rules = {r.id: r for r in loader.ruleset().rules}
    assert set(rules) == {"rain-burst", "both"}  # the local compound rule stays
    assert rules["rain-burst"].name == "短时强降雨（县）"
    save(tmp_path / "plan.json", out)
    fresh = RulesLoader(loader.config)
    fresh.load()
    result = load_saved(tmp_path / "plan.json", fresh)
    assert result is not None and result.ok and fresh.plan == out
    assert load_saved(tmp_path / "none.json", fresh) is None


def test_the_county_people_join_the_ladder_and_its_deadlines_are_known(
    loader: RulesLoader, tmp_path: Path
) -> None:
    out = check_plan(body(GOOD, county=COUNTY), "all", loader)
    assert isinstance(out, PlanRules) and out.county is not None
    people = People(loader.config)
    assert [(s.grid, [c.name for c in s.callees]) for s in people.chain("p1")] == [
        ("village:v1", ["张网格"]),
        ("county", ["王值班（旧号码）", "周县长"]),
    ]
    people.use_county(out.county)
    # wang of the county replaces the file's wang; zhou, not named by the county, stays
    assert [(s.grid, [c.name for c in s.callees]) for s in people.chain("p1")] == [
        ("village:v1", ["张网格"]),
        ("county", ["周县长", "王值班", "刘局长"]),
    ]
    county_step = people.chain("p1")[1].callees
    assert county_step[1].deputy is not None and county_step[1].deputy.name == "刘局长"
    assert (people.find("13900000003") or people.find("x")).name == "刘局长"  # type: ignore[union-attr]
    assert people.find("13800000009") is None  # the old number of wang is gone
    # a restart: the plan kept is checked again, people and all
    save(tmp_path / "plan.json", out)
    fresh = RulesLoader(loader.config)
    fresh.load()
    result = load_saved(tmp_path / "plan.json", fresh)
    assert result is not None and result.ok and fresh.plan == out
    people.use_county(None)
    assert people.find("13900000003") is None


MIN = 60_000
# (warning events: at, kind, level) -> when the county steps in, with COUNTY's deadlines
# (red 10 min, orange 20 min, yellow 60 min, blue: none)
DUE = [
    ("issued red, nobody answered", [(0, "warning_issued", "red")], 10 * MIN),
    ("answered", [(0, "warning_issued", "red"), (MIN, "acknowledged", None)], None),
    (
        "raised to red after a yellow answered: the red step's clock",
        [
            (0, "warning_issued", "yellow"),
            (MIN, "acknowledged", None),
            (5 * MIN, "warning_raised", "red"),
        ],
        15 * MIN,
    ),
    (
        "yellow unanswered, then red: the earlier deadline of the two",
        [(0, "warning_issued", "yellow"), (55 * MIN, "warning_raised", "red")],
        60 * MIN,
    ),
    ("blue stays with the township", [(0, "warning_issued", "blue")], None),
    ("no warning events yet", [(0, "called", None)], None),
]


@pytest.mark.parametrize(("name", "steps", "due"), DUE, ids=[d[0] for d in DUE])
def test_when_the_county_steps_in(
    loader: RulesLoader, name: str, steps: list[Any], due: int | None
) -> None:
    out = check_plan(body(GOOD, county=COUNTY), "all", loader)
    assert isinstance(out, PlanRules)
    people = People(loader.config)
    assert people.county_due("red", steps) is None  # no county part: no county deadline
    people.use_county(out.county)
    assert people.county_due("red", steps) == due


@pytest.mark.parametrize(
    ("values", "chosen"),
    [
        ({"all": b"a"}, "all"),
        ({"all": b"a", "group.south": b"g"}, "group.south"),
        ({"all": b"a", "group.south": b"g", "station.xikou": b"s"}, "station.xikou"),
        ({"group.north": b"n", "station.other": b"o"}, None),
    ],
)
def test_the_most_specific_plan_that_concerns_the_station(
    values: dict[str, bytes], chosen: str | None
) -> None:
    keys = keys_for("xikou", "south")
    assert keys == ["station.xikou", "group.south", "all"]
    got = choose({k: v for k, v in values.items() if k in keys}, keys)
    assert (got[0] if got else None) == chosen
