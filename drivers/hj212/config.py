"""Station-file models of HJ 212: the `[hj212]` listener and a device's `transport`.

    [hj212]
    listen = { host = "0.0.0.0", port = 15212 }

    transport = { kind = "hj212", mn = "88888880000001", pollutants = { a21026 = "so2_mg" } }

`pollutants` maps real-time values (CN 2011, `-Rtd`) to metrics; `minute`, `hourly` and
`daily` map the period data (CN 2051, 2061, 2031; `-Avg` unless the key names another
statistic, e.g. `"a21026-Max"`). Codes not mapped are logged once and not stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from drivers.link.config import Listen, Model, Name, TransportModel

Metric = Name
# a pollutant code (a21026, w01018, 011, B01, LA …), optionally with a statistic
Code = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9]{1,16}(-(Rtd|Avg|Min|Max|Cou|ZsRtd|ZsAvg|ZsMin|ZsMax))?$")
]


class Hj212Section(Model):
    """Where HJ 212 analysers (data acquisition units) reach the gateway."""

    listen: Listen | None = None
    timezone: str = "Asia/Shanghai"  # the analysers' clocks (DataTime, QN)
    idle_timeout_s: float = Field(default=600.0, gt=0)  # close a silent connection
    frame_timeout_s: float = Field(default=5.0, gt=0)  # drop a partial frame after silence
    reply: bool = True  # answer CN=9014 when a data upload's Flag asks for it


class Hj212Transport(TransportModel):
    """An analyser by its MN (device id on the wire); pollutant codes -> metrics."""

    kind: Literal["hj212"]
    mn: str = Field(min_length=1, max_length=64, pattern=r"^[^;,=&]+$")
    password: str | None = Field(default=None, max_length=64)  # PW checked when given
    pollutants: dict[Code, Metric] = Field(default_factory=dict)  # CN 2011 real-time
    minute: dict[Code, Metric] = Field(default_factory=dict)  # CN 2051
    hourly: dict[Code, Metric] = Field(default_factory=dict)  # CN 2061
    daily: dict[Code, Metric] = Field(default_factory=dict)  # CN 2031

    def table(self, cn: str) -> dict[str, str]:
        return {
            "2011": self.pollutants,
            "2051": self.minute,
            "2061": self.hourly,
            "2031": self.daily,
        }.get(cn, {})

    def metric(self, cn: str, code: str, suffix: str) -> str | None:
        """The metric a value is stored as: `code-suffix`, else `code` for the command's
        own statistic (Rtd for real-time data, Avg for periods)."""
        table = self.table(cn)
        main = "Rtd" if cn == "2011" else "Avg"
        return table.get(f"{code}-{suffix}") or (table.get(code) if suffix == main else None)

    def problems(self, where: str, metrics: set[str]) -> list[str]:
        out = []
        for name in ("pollutants", "minute", "hourly", "daily"):
            for code, metric in getattr(self, name).items():
                if metric not in metrics:
                    out.append(f"{where}.{name}.{code}: metric {metric!r} is not configured")
        if not (self.pollutants or self.minute or self.hourly or self.daily):
            out.append(f"{where}: map at least one pollutant (pollutants, minute, hourly, daily)")
        return out


def mn_problems(analysers: list[tuple[int, Hj212Transport]]) -> list[str]:
    """Two devices with one MN: the second would never get a reading."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for index, t in analysers:
        if t.mn in seen:
            out.append(
                f"devices[{index}].transport.mn: {t.mn!r} is already devices[{seen[t.mn]}]'s"
            )
        seen.setdefault(t.mn, index)
    return out


def problems(
    where: str, t: TransportModel, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    assert isinstance(t, Hj212Transport)
    return t.problems(where, metrics)
