"""People, duty roster, ticket policy and channels in the station file: key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.station import load_config
from gateway.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_the_example_station_is_complete() -> None:
    cfg = load_config(REPO / "examples" / "station.toml")
    assert len(cfg.people) >= 5 and len(cfg.duty) == 2
    assert cfg.notify.sirens[0].points == ["xiaxi-slope"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            '[[people]]\nid = "a"\nname = "甲"\ngrid = "street:x"\n',
            "people[0].grid: Value error, grid level must be one of",
        ),
        (
            '[[people]]\nid = "a"\nname = "甲"\ngrid = "point:nowhere"\n',
            "people[0].grid: unknown point 'nowhere'",
        ),
        (
            '[[people]]\nid = "a"\nname = "甲"\ndeputy = "b"\n',
            "people[0].deputy: unknown person 'b'",
        ),
        (
            '[[people]]\nid = "a"\nname = "甲"\nphone = "call me"\n',
            "people[0].phone: String should match pattern",
        ),
        (
            '[[people]]\nid = "a"\nname = "甲"\nroles = ["boss"]\n',
            "people[0].roles[0]: Input should be",
        ),
        (
            '[[duty]]\nofficer = "x"\nstart = "08:00"\nend = "20:00"\n',
            "duty[0].officer: unknown person 'x'",
        ),
        (
            '[[duty]]\nofficer = "x"\nstart = "8am"\nend = "20:00"\n',
            "duty[0].start: String should match pattern",
        ),
        (
            '[tickets]\nack_deadline = { red = "soon" }\n',
            "tickets.ack_deadline.red: Value error, 'soon' is not a duration",
        ),
        ('[tickets]\nroles.approve = ["leader"]\n', "tickets.roles.approve"),
        (
            '[[notify.sirens]]\ndevice = "s1"\npoints = ["p9"]\n',
            "notify.sirens[0].points[0]: unknown monitoring point 'p9'",
        ),
        ('[notify.webhook]\nurl = "ftp://x"\n', "notify.webhook.url: String should match pattern"),
        (
            '[[notify.sirens]]\ndevice = "s1"\npoints = ["p"]\ntransport = "serial"\n',
            "notify.sirens[0].port: a serial siren needs its port",
        ),
    ],
)
def test_problems_name_their_key(tmp_path: Path, extra: str, problem: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        '[station]\nid = "s"\nname = "站"\n[database]\npath = "x.db"\n'
        '[[villages]]\nid = "v"\nname = "村"\n[[points]]\nid = "p"\nname = "点"\nvillage = "v"\n'
        + extra
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems
