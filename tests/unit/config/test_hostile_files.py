"""Configuration and rule files cannot execute code, read files outside their folder or
exhaust memory: hostile files are refused with a clear error naming the file and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.station import MAX_FILE_BYTES, load_config, read_toml
from gateway.core.errors import ConfigError
from rules.durations import parse_duration
from rules.schema import parse_rules
from rules.testing import parse_test_file
from tests.unit.config.test_config import GOOD

HOSTILE_TOML = {
    "deep arrays": ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    "deep tables": ("a = " + "{b = " * 100_000 + "1" + "}" * 100_000 + "\n", "nested too deeply"),
    "huge integer": ("a = " + "9" * 100_000 + "\n", "Exceeds the limit"),
    "too large": ("# " + "x" * MAX_FILE_BYTES + "\n", "larger than 4 MiB"),
    "not UTF-8": ('a = "\xff"\n', "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TOML))
def test_hostile_toml_refused_with_a_clear_error(tmp_path: Path, case: str) -> None:
    text, why = HOSTILE_TOML[case]
    path = tmp_path / "station.toml"
    path.write_bytes(text.encode("latin-1") if case == "not UTF-8" else text.encode())
    for read in (read_toml, load_config):  # station files and rule files alike
        with pytest.raises(ConfigError) as err:
            read(path)
        assert err.value.path == str(path)
        assert any(why in p for p in err.value.problems), err.value.problems


def rule(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "x",
        "name": "n",
        "kind": "threshold",
        "metric": "rain_mm",
        "above": {"blue": 1.0},
    }
    return {"rules": [{**base, **fields}]}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (rule(above={"blue": float("nan")}), "finite number"),
        (rule(above={"blue": float("inf")}), "finite number"),
        (rule(**{"for": "99999999999999999999d"}), "longer than 3660d"),
        (rule(**{"for": "1" + "0" * 400 + "s"}), "longer than 3660d"),
        # expression injection: there is no field anything is evaluated from
        (rule(above={"blue": "__import__('os').system('id')"}), "valid number"),
        (rule(metric="{0.__class__.__mro__}"), ""),
        (rule(scope={"devices": ["$(id)"]}, extra="`id`"), "unknown key"),
    ],
)
def test_hostile_rules_refused(data: dict[str, object], why: str) -> None:
    try:
        rules = parse_rules(data, "evil.toml")
    except ConfigError as e:
        assert e.path == "evil.toml"
        assert any(why in p for p in e.problems), e.problems
        return
    # accepted only as plain data: a metric name is a string compared, never evaluated
    assert why == "" and rules[0].metric == "{0.__class__.__mro__}"


@pytest.mark.parametrize("name", ["/etc/passwd", "../../etc/shadow.toml", "a/../../b.toml"])
def test_rule_test_files_name_only_files_beside_them(name: str) -> None:
    data = {"rules": [name], "tests": [{"name": "t", "series": [], "expect": []}]}
    with pytest.raises(ConfigError) as err:
        parse_test_file(data, "plan_test.toml")
    assert any("name a rule file in this file's folder" in p for p in err.value.problems)


def test_station_file_numbers_are_finite(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(GOOD.replace("min = 0, max = 50", "min = -inf, max = nan", 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert any("finite number" in p for p in err.value.problems), err.value.problems


def test_durations_have_a_ceiling() -> None:
    assert parse_duration("3660d") == 3660 * 86_400_000
    with pytest.raises(ValueError, match="longer than"):
        parse_duration("3661d")
