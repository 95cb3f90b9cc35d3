"""The configured devices: turns decoded reports into readings, or says why not."""

from __future__ import annotations

from drivers.host import Mapped
from drivers.mqtt_json.codec import Report
from gateway.config.station import Config, MetricSpec
from gateway.core.model import FLAG_OUT_OF_RANGE, Reading


class Registry:
    def __init__(self, cfg: Config) -> None:
        self.station = cfg.station.id
        self._metrics: dict[str, dict[str, MetricSpec]] = {
            d.id: dict(d.metrics) for d in cfg.devices
        }

    def knows(self, device: str) -> bool:
        return device in self._metrics

    def metrics(self) -> set[str]:
        return {m for ms in self._metrics.values() for m in ms}

    def map(self, device: str, reports: list[Report]) -> Mapped:
        """Readings of a known device; values outside the physical range are flagged."""
        specs = self._metrics[device]
        readings: list[Reading] = []
        unknown: list[str] = []
        bad: list[Reading] = []
        for report in reports:
            for metric, value in report.values:
                spec = specs.get(metric)
                if spec is None:
                    if metric not in unknown:
                        unknown.append(metric)
                    continue
                flags = 0 if spec.min <= value <= spec.max else FLAG_OUT_OF_RANGE
                reading = Reading(device, metric, report.ts, value, flags)
                readings.append(reading)
                if flags:
                    bad.append(reading)
        return Mapped(readings, unknown, bad)
