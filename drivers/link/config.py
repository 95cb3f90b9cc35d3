"""Settings every driver shares: the base of a device's `transport` table, names, and the
links drivers listen on (a TCP port, a serial line).

A device's `transport` is a table whose `kind` picks the driver (drivers/registry.py):

    transport = { kind = "sl651", address = "0081120005", elements = { PT = "rain_total_mm" } }

Protocol element names (SL 651 `PT`, Modbus registers, CIGEM sensor codes) map to the
device's configured metrics in each protocol's own `config.py`; nothing in a driver's codec
names a station metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransportModel(Model):
    """The base of every protocol's `transport` table."""

    kind: str


class Listen(Model):
    host: str = "0.0.0.0"
    port: int = Field(ge=0, le=65535)


class SerialPort(Model):
    """A serial line (RS-485 bus, radio modem, USB dock) and the protocol spoken on it."""

    id: Name
    path: Path
    protocol: Literal["sl651", "modbus_rtu", "gb26875", "handheld_dock"]
    baud: int = Field(default=9600, ge=300, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    device: Name | None = None  # handheld_dock: the recorder docked on this port


def unknown_metrics(where: str, mapping: dict[str, str], metrics: set[str]) -> list[str]:
    """`where.<code>: metric … is not configured` for every mapped metric the device lacks."""
    return [
        f"{where}.{code}: metric {metric!r} is not configured"
        for code, metric in mapping.items()
        if metric not in metrics
    ]
