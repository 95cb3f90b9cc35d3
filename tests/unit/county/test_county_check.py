"""`stationgw county check -c county.toml`: ok, or every problem with its key path (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main

GOOD = """
[county]
name = "清水县应急管理局"
[[stations]]
id = "qs"
name = "清水镇"
group = "north"
[[stations]]
id = "hs"
name = "河山镇"
[nats]
servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
[postgres]
dsn = "postgresql://county@db/county"
[[people]]
id = "wang"
name = "王值班"
phone = "13900000001"
roles = ["duty_officer"]
[[people]]
id = "liu"
name = "刘局长"
phone = "13900000003"
roles = ["leader"]
grid = "county"
[[duty]]
officer = "wang"
start = "08:00"
end = "08:00"
[notify.sms]
port = "/dev/ttyUSB2"
"""


def test_a_good_file_is_summed_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "county.toml"
    f.write_text(GOOD)
    assert main(["county", "check", "-c", str(f)]) == 0
    out = capsys.readouterr().out
    assert "ok — county 清水县应急管理局, 2 stations (1 groups)" in out
    assert "stream COUNTY, consumer county" in out


def test_a_county_that_could_call_nobody_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "county.toml"
    f.write_text(GOOD.split("[[people]]")[0])
    assert main(["county", "check", "-c", str(f)]) == 2
    assert f"{f}: duty: nobody to call" in capsys.readouterr().err


def test_problems_name_the_file_and_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "county.toml"
    f.write_text(
        GOOD.replace('id = "hs"', 'id = "qs"').replace("[postgres]", "[postgres]\nport = 5")
        + "[nats.extra]\n"
    )
    assert main(["county", "check", "-c", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: postgres.port: unknown key" in err or f"{f}: postgres.port" in err
    assert "nats.extra" in err
    f.write_text(GOOD.replace('id = "hs"', 'id = "qs"'))
    assert main(["county", "check", "-c", str(f)]) == 2
    assert f"{f}: stations[1].id: 'qs' is listed twice" in capsys.readouterr().err
    f.write_text(GOOD.replace('id = "hs"', 'id = "h.s"'))
    assert main(["county", "check", "-c", str(f)]) == 2
    assert "stations[1].id: 'h.s' has a '.'" in capsys.readouterr().err
    assert main(["county", "check", "-c", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("groups", "said"),
    [
        (
            '[[groups]]\nid = "south"\nname = "南片"\n',
            "groups[0].id: no station of [[stations]] is in group 'south'",
        ),
        (
            '[[groups]]\nid = "north"\nname = "北片"\n[[groups]]\nid = "north"\nname = "北"\n',
            "groups[1].id: 'north' is named twice",
        ),
        ('[[groups]]\nid = "north"\nname = ""\n', "groups[0].name"),
    ],
)
def test_group_names_name_groups_that_exist_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], groups: str, said: str
) -> None:
    f = tmp_path / "county.toml"
    f.write_text(GOOD.replace("[nats]", groups + "[nats]"))
    assert main(["county", "check", "-c", str(f)]) == 2
    assert said in capsys.readouterr().err
    f.write_text(GOOD.replace("[nats]", '[[groups]]\nid = "north"\nname = "北部片区"\n[nats]'))
    assert main(["county", "check", "-c", str(f)]) == 0
