"""`[dashboard.map]`: the risk map's background and the lon/lat of its edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.station import load_config
from gateway.core.errors import ConfigError
from tests.unit.config.test_config import GOOD, write


def test_background_is_read_from_the_station_files_folder(tmp_path: Path) -> None:
    (tmp_path / "town.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    cfg = load_config(
        write(tmp_path, GOOD + '[dashboard.map]\nbackground = "town.svg"\nbounds = [1, 2, 3, 4]\n')
    )
    assert cfg.dashboard.map.background == tmp_path / "town.svg"
    assert cfg.dashboard.map.bounds == (1, 2, 3, 4)
    assert cfg.dashboard.alarm_repeat_s == 4


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ('background = "town.svg"', "bounds: needed with a background"),
        ('background = "town.gif"\nbounds = [1, 2, 3, 4]', "background: an .svg"),
        ("bounds = [3, 2, 1, 4]", "west < east and south < north"),
        ('background = "missing.svg"\nbounds = [1, 2, 3, 4]', "dashboard.map.background: no file"),
    ],
)
def test_bad_map_settings_are_named(tmp_path: Path, section: str, problem: str) -> None:
    (tmp_path / "town.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, GOOD + f"[dashboard.map]\n{section}\n"))
    assert problem in str(e.value)


def test_map_layers_are_read_from_the_station_files_folder(tmp_path: Path) -> None:
    (tmp_path / "rivers.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    layers = (
        '[dashboard.map]\nlayers = [{ name = "河流", file = "rivers.geojson", kind = "river" }]\n'
    )
    cfg = load_config(write(tmp_path, GOOD + layers))
    [layer] = cfg.dashboard.map.layers
    assert (layer.name, layer.kind, layer.file) == ("河流", "river", tmp_path / "rivers.geojson")
    missing = layers.replace("rivers.geojson", "roads.geojson")
    with pytest.raises(ConfigError, match=r"dashboard.map.layers\[0\].file: no file"):
        load_config(write(tmp_path, GOOD + missing))
