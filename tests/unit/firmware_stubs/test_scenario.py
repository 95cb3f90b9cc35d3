"""Scripted device values and scenario files (firmware_stubs.scenario)."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

from firmware_stubs import RAINSTORM
from firmware_stubs.__main__ import main
from firmware_stubs.scenario import (
    DeviceScript,
    MetricScript,
    Scenario,
    ScenarioError,
    load_scenario,
)

RAMP = ((0.0, 0.0), (10.0, 10.0))


# --- MetricScript.value_at --------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "t_s", "expected"),
    [
        # linear interpolation between keyframes
        (MetricScript("m", RAMP), 0.0, 0.0),
        (MetricScript("m", RAMP), 2.5, 2.5),
        (MetricScript("m", RAMP), 10.0, 10.0),
        (MetricScript("m", ((0, 4.0), (10, 2.0), (20, 6.0))), 15.0, 4.0),
        # before the first keyframe: its value; after the last: hold
        (MetricScript("m", ((5.0, 1.0), (10.0, 2.0))), 0.0, 1.0),
        (MetricScript("m", RAMP), 10_000.0, 10.0),
        (MetricScript("m", ((0.0, 3.9),)), 123.0, 3.9),
        # looping with period repeat_s: hold from the last keyframe to the period's end
        (MetricScript("m", RAMP, repeat_s=20.0), 15.0, 10.0),
        (MetricScript("m", RAMP, repeat_s=20.0), 20.0, 0.0),
        (MetricScript("m", RAMP, repeat_s=20.0), 25.0, 5.0),
        (MetricScript("m", RAMP, repeat_s=20.0), 407.5, 7.5),
        (MetricScript("m", RAMP, repeat_s=10.0), 13.0, 3.0),
        # decimals
        (MetricScript("m", ((0, 0.0), (3, 1.0)), decimals=3), 1.0, 0.333),
        (MetricScript("m", ((0, 0.0), (3, 1.0)), decimals=1), 2.0, 0.7),
        (MetricScript("m", ((0, 0.0), (3, 10.0)), decimals=0), 2.0, 7.0),
        # floor
        (MetricScript("m", ((0, -1.0), (10, 1.0)), floor=0.0), 2.0, 0.0),
        (MetricScript("m", ((0, -1.0), (10, 1.0)), floor=0.0), 10.0, 1.0),
        (MetricScript("m", ((0, -1.0), (10, 1.0))), 0.0, -1.0),
    ],
)
def test_value_at(metric: MetricScript, t_s: float, expected: float) -> None:
    assert metric.value_at(t_s, random.Random(0)) == expected


def test_value_at_never_reports_negative_zero() -> None:
    value = MetricScript("m", ((0, -0.01),), decimals=1).value_at(0.0, random.Random(0))
    assert value == 0.0
    assert math.copysign(1.0, value) == 1.0


@pytest.mark.parametrize(("base", "noise"), [(0.0, 0.1), (4.0, 0.05), (-3.0, 2.0)])
def test_noise_stays_within_bounds(base: float, noise: float) -> None:
    metric = MetricScript("m", ((0.0, base),), noise=noise, decimals=6)
    values = [metric.value_at(t, random.Random(7 + t)) for t in range(500)]
    assert all(base - noise <= v <= base + noise for v in values)
    assert max(values) - min(values) > noise  # it really varies


def test_noise_is_reproducible_with_a_seeded_rng() -> None:
    metric = MetricScript("m", RAMP, noise=0.5)

    def run(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [metric.value_at(t, rng) for t in range(20)]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_floor_clips_noise() -> None:
    metric = MetricScript("rain_mm", ((0.0, 0.0),), noise=0.1, floor=0.0, decimals=2)
    rng = random.Random(3)
    values = [metric.value_at(t, rng) for t in range(300)]
    assert min(values) == 0.0
    assert 0.0 < max(values) <= 0.1


def test_noise_without_draws_leaves_rng_alone() -> None:
    rng = random.Random(5)
    MetricScript("m", RAMP).value_at(3.0, rng)
    assert rng.random() == random.Random(5).random()


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ((), "at least one keyframe"),
        (((0.0, 1.0), (5.0, 2.0), (5.0, 3.0)), "must increase"),
        (((-1.0, 1.0),), "negative"),
    ],
)
def test_metric_script_rejects_unusable_keyframes(
    points: tuple[tuple[float, float], ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        MetricScript("m", points)


# --- load_scenario ----------------------------------------------------------------------

GOOD_DEVICE = """
[[devices]]
id = "rg-01"
[devices.metrics.rain_mm]
points = [[0, 0.0], [10, 1.0]]
"""


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_minimal_scenario_with_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "interval_s = 1\n" + GOOD_DEVICE, "ok.toml"))
    metric = MetricScript("rain_mm", ((0.0, 0.0), (10.0, 1.0)))
    assert scenario == Scenario(1.0, (DeviceScript(id="rg-01", metrics=(metric,)),))
    assert scenario.interval_for(scenario.devices[0]) == 1.0


@pytest.mark.parametrize(
    ("text", "key_path", "message"),
    [
        (
            "interval_s = 2\n"
            + GOOD_DEVICE
            + '[[devices]]\nid = "rg-02"\n[devices.metrics.rain_mm]\n'
            + "points = [[0, 0.0], [20, 6.0], [8, 1.0]]\n",
            "devices[1].metrics.rain_mm.points",
            "keyframe times must increase, got 8 after 20",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE.replace("[10, 1.0]", "[10, 1.0, 2.0]"),
            "devices[0].metrics.rain_mm.points[1]",
            "at most 2 items",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE.replace("[[0, 0.0], [10, 1.0]]", "[]"),
            "devices[0].metrics.rain_mm.points",
            "at least 1 item",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE.replace("[0, 0.0]", "[-1, 0.0]"),
            "devices[0].metrics.rain_mm.points",
            "negative",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE + "noise = -0.1\n",
            "devices[0].metrics.rain_mm.noise",
            "greater than or equal to 0",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE + "repeat_s = 5\n",
            "devices[0].metrics.rain_mm.repeat_s",
            "shorter than the last keyframe",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE + "decimals = true\n",
            "devices[0].metrics.rain_mm.decimals",
            "valid integer",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE + "colour = 'red'\n",
            "devices[0].metrics.rain_mm.colour",
            "Extra inputs are not permitted",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE.replace('id = "rg-01"', 'id = "rg-01"\nzone = 3'),
            "devices[0].zone",
            "Extra inputs are not permitted",
        ),
        (
            "interval_s = 2\n" + GOOD_DEVICE.replace('"rg-01"', '"rg/01"'),
            "devices[0].id",
            "should match pattern",
        ),
        (
            'interval_s = 2\n[[devices]]\nid = "rg-01"\nmetrics = {}\n',
            "devices[0].metrics",
            "at least 1 item",
        ),
        ("interval_s = 2\n" + GOOD_DEVICE + GOOD_DEVICE, "devices[1].id", "duplicate device id"),
        ("interval_s = '2'\n" + GOOD_DEVICE, "interval_s", "valid number"),
        ("interval_s = 0\n" + GOOD_DEVICE, "interval_s", "greater than 0"),
        ("interval_s = nan\n" + GOOD_DEVICE, "interval_s", "finite number"),
        (GOOD_DEVICE, "interval_s", "Field required"),
        ("interval_s = 2\ndevices = []\n", "devices", "at least 1 item"),
        ("interval_s = 2\nstation = 'x'\n" + GOOD_DEVICE, "station", "Extra inputs"),
    ],
)
def test_load_errors_name_file_and_key_path(
    tmp_path: Path, text: str, key_path: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    first_line = str(caught.value).splitlines()[0]
    assert first_line.startswith(f"{path}: {key_path}: ")
    assert message in first_line


def test_load_reports_every_error(tmp_path: Path) -> None:
    path = write(tmp_path, "interval_s = -1\n" + GOOD_DEVICE + "noise = -1\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "interval_s",
        "devices[0].metrics.rain_mm.noise",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("interval_s = = 2\n", "not valid TOML"), (None, "cannot read")],
)
def test_load_unreadable_file(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "storm.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=f"^{re.escape(str(path))}: {message}"):
        load_scenario(path)


def test_cli_exits_2_on_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "interval_s = 0\n" + GOOD_DEVICE)
    assert main(["--station", "qingshui", "--scenario", str(path)]) == 2
    assert f"{path}: interval_s: " in capsys.readouterr().err


# --- the shipped demo scenario ----------------------------------------------------------


@pytest.fixture(scope="module")
def rainstorm() -> Scenario:
    return load_scenario(RAINSTORM)


def first_report_above(scenario: Scenario, device_id: str, threshold: float, seed: int) -> float:
    """The time of the first report (every interval_s from 0) whose value exceeds threshold."""
    device = scenario.device(device_id)
    step = scenario.interval_for(device)
    rng = random.Random(seed)
    for k in range(1000):
        t = k * step
        if device.values_at(t, rng)["rain_mm"] > threshold:
            return t
    raise AssertionError(f"{device_id} never exceeds {threshold}")


def test_rainstorm_devices(rainstorm: Scenario) -> None:
    assert rainstorm.interval_s == 2.0
    assert {
        d.id: (d.clock_offset_s, tuple(m.name for m in d.metrics)) for d in rainstorm.devices
    } == {
        "rg-01": (0.0, ("rain_mm", "battery_v")),
        "rg-02": (0.0, ("rain_mm", "battery_v")),
        "wl-01": (1.5, ("level_m", "battery_v")),
        "cm-01": (-0.8, ("crack_mm", "battery_v")),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("threshold", "before_s"), [(2.0, 12.0), (5.0, 30.0), (8.0, 42.0)])
def test_rainstorm_rg01_crosses_thresholds_early(
    rainstorm: Scenario, seed: int, threshold: float, before_s: float
) -> None:
    assert first_report_above(rainstorm, "rg-01", threshold, seed) < before_s


def test_rainstorm_repeats_and_dries_out(rainstorm: Scenario) -> None:
    rain = rainstorm.device("rg-01").metrics[0]
    rng = random.Random(0)
    assert all(rain.value_at(t, rng) <= 0.1 for t in range(150, 300))
    assert rain.value_at(310.0, rng) > 2.0  # the next storm
    rg02 = rainstorm.device("rg-02").metrics[0]
    assert 3.5 < max(rg02.value_at(t, rng) for t in range(300)) < 4.5


def test_rainstorm_other_devices_stay_plausible(rainstorm: Scenario) -> None:
    rng = random.Random(1)
    series = {
        (d.id, m.name): [m.value_at(t, rng) for t in range(0, 600, 2)]
        for d in rainstorm.devices
        for m in d.metrics
    }
    for (device_id, name), values in series.items():
        if name == "battery_v":
            assert min(values) >= 3.9 and max(values) <= 4.1, device_id
    level = series["wl-01", "level_m"]
    assert level[0] == pytest.approx(2.1, abs=0.02)
    assert max(level) == pytest.approx(3.4, abs=0.05)
    crack = series["cm-01", "crack_mm"]
    assert crack[0] == pytest.approx(12.0, abs=0.01)
    assert crack[-1] == pytest.approx(12.5, abs=0.01)
