"""`[reports]` in the station file: which metrics the monthly report reads as rainfall,
water level and crack displacement, and what makes a storm day."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # metric -> how its values add up: "increment" (each report's amount) or "counter"
    # (a cumulative total; a drop, e.g. the 08:00 reset, counts from zero)
    rain_metrics: dict[str, Literal["increment", "counter"]] = {
        "rain_mm": "increment",
        "rain_total_mm": "counter",
    }
    # a local day with at least this much rain at a gauge is a storm day (暴雨日: 24 h ≥ 50 mm)
    storm_day_mm: float = Field(default=50.0, gt=0)
    water_metrics: list[str] = ["level_m"]  # water levels, compared with their rules' lines
    crack_metrics: list[str] = ["crack_mm", "crack2_mm"]  # slope movement per crack meter
