"""Station files: every problem named with its file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.station import load_config
from gateway.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

GOOD = """
[station]
id = "qingshui"
name = "清水镇"

[[villages]]
id = "xiaxi"
name = "下溪村"

[[points]]
id = "slope"
name = "后山"
village = "xiaxi"

[[devices]]
id = "rg-01"
name = "雨量计"
kind = "rain_gauge"
point = "slope"
metrics.rain_mm = { unit = "mm", min = 0, max = 50 }

[[devices]]
id = "rg-02"
name = "雨量计2"
kind = "rain_gauge"
point = "slope"
metrics.rain_mm = { unit = "mm", min = 0, max = 50 }

[database]
path = "data/station.db"
"""


def write(tmp_path: Path, text: str, name: str = "station.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_file_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.database.path == (tmp_path / "data" / "station.db").resolve()
    assert [d.id for d in cfg.devices] == ["rg-01", "rg-02"]
    assert cfg.broker.protocol == "5"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('unit = "mm", min = 0, max = 50 }\n\n[database]', "min = 0, max = 50 }\n\n[database]"),
            "devices[1].metrics.rain_mm.unit: Field required",
        ),
        (
            (
                'unit = "mm", min = 0, max = 50 }\n\n[database]',
                'unit = "mm", min = 9, max = 5 }\n\n[database]',
            ),
            "devices[1].metrics.rain_mm.max: must be greater than min",
        ),
        (
            (
                'kind = "rain_gauge"\npoint = "slope"\nmetrics.rain_mm = { unit = "mm", min = 0, max = 50 }\n\n[database]',
                'kind = "rain_gauge"\npoint = "nowhere"\nmetrics.rain_mm = { unit = "mm", min = 0, max = 50 }\n\n[database]',
            ),
            "devices[1].point: unknown monitoring point 'nowhere'",
        ),
        (('name = "清水镇"', 'name = "清水镇"\ncolour = "red"'), "station.colour: unknown key"),
        (('id = "rg-02"', 'id = "rg-01"'), "devices[1].id: duplicate id 'rg-01'"),
        (('id = "rg-02"', 'id = "rg/02"'), "devices[1].id: String should match pattern"),
        (
            ('name = "清水镇"', 'name = "清水镇"\ntimezone = "Mars/Olympus"'),
            "station.timezone: Value error, unknown time zone 'Mars/Olympus'",
        ),
        (('path = "data/station.db"', ""), "database.path: Field required"),
        (('village = "xiaxi"', 'village = "shangping"'), "points[0].village: unknown village"),
        (("[station]", "[station\n"), "not valid TOML"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.path == str(path)
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD)
    assert main(["check", "-c", str(good)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "2 devices" in out and out.count("\n") == 1
    bad = write(tmp_path, GOOD.replace('unit = "mm", ', "", 2), "bad.toml")
    assert main(["check", "-c", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}: devices[0].metrics.rain_mm.unit: Field required",
        f"{bad}: devices[1].metrics.rain_mm.unit: Field required",
    ]


def test_check_reports_rule_problems_with_the_rules_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(
        tmp_path,
        '[[rules]]\nid = "r"\nname = "x"\nkind = "threshold"\nmetric = "level_m"\n'
        "above = { blue = 3, yellow = 2 }\n",
        "rules.toml",
    )
    station = write(tmp_path, GOOD + '\n[rules]\npath = "rules.toml"\n')
    assert main(["check", "-c", str(station)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}: rules[0] (r): Value error, level values must strictly increase" in err


@pytest.mark.parametrize(
    "path",
    [REPO / "examples" / "station.toml", REPO / "gateway" / "devtools" / "demo_station.toml"],
)
def test_shipped_station_files_are_valid(path: Path) -> None:
    assert main(["check", "-c", str(path)]) == 0


TRANSPORTS = GOOD.replace(
    'metrics.rain_mm = { unit = "mm", min = 0, max = 50 }\n\n[database]',
    """metrics.rain_mm = { unit = "mm", min = 0, max = 50 }
transport = { kind = "sl651", address = "0081120005", elements = { PT = "rain_mm", VT = "volts" } }

[[devices]]
id = "mb-01"
name = "液位计"
kind = "level"
point = "slope"
metrics.level_m = { unit = "m", min = 0, max = 20 }
transport = { kind = "modbus_rtu", port = "bus9", unit = 300, registers = [{ metric = "level_m", address = 4, type = "float64" }] }

[database]""",
)


def test_transport_problems_name_their_key_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, TRANSPORTS))
    assert e.value.problems == [
        "devices[2].transport.unit: Input should be less than or equal to 247",
        "devices[2].transport.registers[0].type: Input should be 'int16', 'uint16', 'int32', "
        "'uint32' or 'float32'",
    ]
    fixed = TRANSPORTS.replace("unit = 300", "unit = 3").replace('"float64"', '"float32"')
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, fixed))
    assert e.value.problems == [
        "devices[1].transport.elements.VT: metric 'volts' is not configured",
        "devices[2].transport.port: unknown serial port 'bus9'",
    ]


def test_example_station_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(REPO / "examples" / "station.toml")]) == 0
    assert ": ok — station qingshui" in capsys.readouterr().out
