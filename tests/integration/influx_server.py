"""The real InfluxDB 1.x server of the uplink tests is the bench's (one helper for both)."""

from gateway.devtools.bench.influxd import InfluxServer

__all__ = ["InfluxServer"]
