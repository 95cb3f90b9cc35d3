"""Simulated field devices that speak MQTT JSON as their firmware would."""

from pathlib import Path
from typing import Final

from firmware_stubs.mqtt_device import run_device, run_scenario
from firmware_stubs.scenario import (
    DeviceScript,
    MetricScript,
    Scenario,
    ScenarioError,
    load_scenario,
)

#: The demo scenario shipped with the package.
RAINSTORM: Final = Path(__file__).parent / "scenarios" / "rainstorm.toml"

__all__ = [
    "RAINSTORM",
    "DeviceScript",
    "MetricScript",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "run_device",
    "run_scenario",
]
