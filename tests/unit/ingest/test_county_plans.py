"""A county rules plan checked on the station (gateway/ingest/plans.py) and the keys a
station watches (gateway/uplinks/plans.py): table-driven, no IO."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.station import parse_config
from gateway.ingest.plans import PlanResult, check_plan, load_saved, plan_hash, save
from gateway.ingest.rules_loader import PlanRules, RulesLoader
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


def body(text: str, version: str = "v1", digest: str | None = None) -> dict[str, str]:
    return {"version": version, "hash": digest or plan_hash(text), "rules": text}


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
