"""Rule files: errors name the file, the rule and the key; reloads keep what runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.station import load_config
from gateway.core.errors import ConfigError
from gateway.ingest.rules_loader import RulesLoader
from rules.durations import format_duration, parse_duration
from rules.schema import parse_rules
from rules.testing import expand

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "rules" / "examples"


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("10m", 600_000), ("1h30m", 5_400_000), ("2d", 172_800_000), ("250ms", 250)],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["", "10", "1h 30m", "ten minutes", "5w", "-1h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(x) for x in (0, 90_000, 3_600_000, 4_200_000, 86_400_000)] == [
        "0ms",
        "90s",
        "1h",
        "70m",
        "1d",
    ]


@pytest.mark.parametrize(
    ("values", "expanded"),
    [
        ("1 2.5 _ 3", [1, 2.5, None, 3]),
        ("5x3", [5, 5, 5]),
        ("0+2x4", [0, 2, 4, 6]),
        ("10-1x3", [10, 9, 8]),
        ("-1.5x2", [-1.5, -1.5]),
    ],
)
def test_series_notation(values: str, expanded: list[float | None]) -> None:
    assert expand(values) == expanded


GOOD = {
    "rules": [
        {"id": "ok", "name": "n", "kind": "threshold", "metric": "rain_mm", "above": {"blue": 1}},
    ]
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {
                "id": "a",
                "name": "n",
                "kind": "threshold",
                "metric": "m",
                "above": {"blue": 2, "yellow": 1},
            },
            "rules[1] (a): Value error, level values must strictly increase from blue to red",
        ),
        (
            {"id": "a", "name": "n", "kind": "threshold", "metric": "m"},
            "rules[1] (a): Value error, give exactly one of 'above' or 'below'",
        ),
        (
            {
                "id": "b",
                "name": "n",
                "kind": "accumulation",
                "metric": "m",
                "windows": [{"window": "1 hour", "blue": 1}],
            },
            "rules[1] (b).windows[0].window: Value error, '1 hour' is not a duration",
        ),
        (
            {
                "id": "c",
                "name": "n",
                "kind": "rate",
                "metric": "m",
                "window": "1h",
                "per": "week",
                "above": {"red": 1},
            },
            "rules[1] (c).per: Input should be 'min', 'h' or 'd'",
        ),
        (
            {"id": "d", "name": "n", "kind": "sigmoid"},
            "rules[1] (d): Input tag 'sigmoid' found using 'kind' does not match any of the expected tags",
        ),
        (
            {
                "id": "e",
                "name": "n",
                "kind": "threshold",
                "metric": "m",
                "above": {"blue": 1},
                "colour": 1,
            },
            "rules[1] (e).colour: unknown key (not allowed here)",
        ),
        (
            {
                "id": "f",
                "name": "n",
                "kind": "compound",
                "all": [{"rule": "ok", "level": "pink"}],
                "level": "red",
            },
            "rules[1] (f).all[0].level: Input should be 'blue', 'yellow', 'orange' or 'red'",
        ),
    ],
)
def test_errors_name_the_rule_and_key(rule: dict[str, object], expected: str) -> None:
    data = {"rules": [*GOOD["rules"], rule]}
    with pytest.raises(ConfigError) as err:
        parse_rules(data, "plan.toml")
    assert err.value.path == "plan.toml"
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def test_no_rule_can_execute_code() -> None:
    """Rules are data: there is no expression field anything could be evaluated from."""
    data = {
        "rules": [
            {
                "id": "x",
                "name": "n",
                "kind": "threshold",
                "metric": "m",
                "above": {"blue": "__import__('os').system('true')"},
            }
        ]
    }
    with pytest.raises(ConfigError, match="valid number"):
        parse_rules(data, "evil.toml")


def test_examples_pass_their_tests(capsys: pytest.CaptureFixture[str]) -> None:
    tests = sorted(str(p) for p in EXAMPLES.glob("*_test.toml"))
    assert len(tests) == 6
    assert main(["rules", "test", *tests]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "FAIL" not in out


def test_rules_test_reports_a_failure_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.toml").write_text(
        (EXAMPLES / "gas.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "t.toml").write_text(
        'rules = ["r.toml"]\n[[tests]]\nname = "wrong on purpose"\n'
        '[[tests.series]]\ndevice = "gd-01"\nmetric = "gas_lel"\nstep = "5s"\nvalues = "25x4"\n'
        '[[tests.expect]]\nat = "10s"\nrule = "gas-lel"\ndevice = "gd-01"\nlevel = "red"\n',
        encoding="utf-8",
    )
    assert main(["rules", "test", str(tmp_path / "t.toml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "- expected  10s  hazard  gas-lel  gd-01  red" in out
    assert "+ got       10s  hazard  gas-lel  gd-01  orange" in out


def test_rules_check_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["rules", "check", str(EXAMPLES), "-c", str(REPO / "examples" / "station.toml")]) == 0
    )
    out = capsys.readouterr().out
    assert "flash-flood" in out and "(9 rules ok)" in out


def test_rules_check_names_every_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.toml").write_text(
        '[[rules]]\nid = "x"\nname = "n"\nkind = "threshold"\n', encoding="utf-8"
    )
    (tmp_path / "b.toml").write_text("[[rules]\n", encoding="utf-8")
    assert main(["rules", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.toml'}: rules[0] (x).metric: Field required" in err
    assert f"{tmp_path / 'b.toml'}: not valid TOML" in err


def test_replay_csv_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "storm.csv"
    rows = ["ts,device,metric,value"] + [
        f"2026-07-01T{h:02d}:00:00+08:00,rg-01,rain_mm,20" for h in range(4)
    ]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert (
        main(
            [
                "rules",
                "replay",
                "--rules",
                str(EXAMPLES / "rainstorm_signal.toml"),
                "--csv",
                str(csv),
                "--json",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [
        (x["ts"], x["device"], x["metric"], x["rule"], x["level"], x["kind"]) for x in lines
    ] == [("2026-06-30T18:00:00Z", "rg-01", "rain_mm", "rainstorm-signal", "orange", "hazard")]


def test_replay_bad_csv_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,device,metric,value\n1780000000000,rg-01,rain_mm,wet\n", encoding="utf-8")
    assert main(["rules", "replay", "--rules", str(EXAMPLES / "gas.toml"), "--csv", str(csv)]) == 1
    assert f"{csv}:2:" in capsys.readouterr().err


STATION = """
[station]
id = "s"
name = "站"
[[villages]]
id = "v"
name = "村"
[[points]]
id = "p"
name = "点"
village = "v"
[[devices]]
id = "rg-01"
name = "雨量计"
kind = "rain_gauge"
point = "p"
metrics.rain_mm = { unit = "mm", min = 0, max = 50 }
[database]
path = "s.db"
[rules]
path = "rules"
"""


def test_loader_rejects_a_bad_file_and_keeps_its_running_rules(tmp_path: Path) -> None:
    (tmp_path / "station.toml").write_text(STATION, encoding="utf-8")
    folder = tmp_path / "rules"
    folder.mkdir()
    rain = folder / "rain.toml"
    rain.write_text(
        '[[rules]]\nid = "burst"\nname = "n"\nkind = "threshold"\nmetric = "rain_mm"\n'
        "above = { blue = 2 }\n",
        encoding="utf-8",
    )
    loader = RulesLoader(load_config(tmp_path / "station.toml"))
    assert loader.load() == [str(rain)]
    assert [r.id for r in loader.ruleset().rules] == ["burst"]
    assert not loader.changed()

    rain.write_text("[[rules]]\nid = 'burst'\nkind = 'threshold'\n", encoding="utf-8")  # broken
    (folder / "more.toml").write_text(
        '[[rules]]\nid = "quiet"\nname = "n"\nkind = "no_data"\nafter = "1h"\n', encoding="utf-8"
    )
    assert loader.changed()
    assert loader.load() == [str(folder / "more.toml")]
    assert sorted(r.id for r in loader.ruleset().rules) == ["burst", "quiet"]  # burst kept
    assert any("name: Field required" in p for p in loader.errors[str(rain)])

    (folder / "dupe.toml").write_text(
        '[[rules]]\nid = "quiet"\nname = "n"\nkind = "no_data"\nafter = "2h"\n', encoding="utf-8"
    )
    assert loader.load() == []
    assert "already used" in loader.errors[str(folder / "dupe.toml")][0]
    (folder / "dupe.toml").unlink()
    rain.write_text(
        '[[rules]]\nid = "burst"\nname = "n"\nkind = "threshold"\nmetric = "rain_mm"\n'
        "above = { blue = 3 }\n",
        encoding="utf-8",
    )
    assert loader.load() == [str(rain)]
    assert loader.errors == {}
