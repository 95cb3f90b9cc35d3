"""SL 651 settings: a station's `transport` table and the `[sl651]` section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from drivers.link.config import Listen, Model, Name, TransportModel, unknown_metrics

HexAddress = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{10}$")]


class Sl651Transport(TransportModel):
    """An SL 651 station: its address; its elements (PT, Z, VT, FF09 …) -> metrics."""

    kind: Literal["sl651"]
    address: HexAddress = Field(description="remote station address, 10 hex digits")
    password: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{4}$")] | None = None
    elements: dict[str, Name] = Field(min_length=1)
    reply: bool = True  # send the confirmation frame after the commit
    # the observation time before an F4–FC array: "first" = its first 5-minute value
    # (SL 651-2014 6.6.2.8 d, tables 36/45), "end" = the end of the hour (some vendors)
    array_time: Literal["first", "end"] = "first"


class Sl651Section(Model):
    """Where SL 651 stations reach the gateway: a TCP port and/or serial ports."""

    listen: Listen | None = None
    timezone: str = "Asia/Shanghai"  # the stations' clocks (SL 651 uses Beijing time)
    reply_functions: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}$")]] = Field(
        default_factory=lambda: ["30", "31", "32", "33", "34", "35"]
    )
    idle_timeout_s: float = Field(default=600.0, gt=0)  # close a silent TCP connection
    frame_timeout_s: float = Field(default=5.0, gt=0)  # drop a partial frame after silence
    # a station whose send time is this far from the gateway's clock gets its clock set (4A);
    # 0 turns clock keeping off. SL 651-2014 6.6.4.24 sets twice beyond 5 minutes.
    clock_limit_s: float = Field(default=120.0, ge=0)


def problems(
    where: str, t: TransportModel, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    assert isinstance(t, Sl651Transport)
    return unknown_metrics(f"{where}.elements", t.elements, metrics)
