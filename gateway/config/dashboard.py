"""Configuration of the duty-room page: `[dashboard.map]`, the risk map's background.

The background is a scanned township map (PNG/JPEG) or an SVG outline; `bounds` are the
longitudes and latitudes of its left, bottom, right and top edges, so that a point's
`lon`/`lat` land where they belong on it (a straight linear mapping, fine for a township).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAP_TYPES = {
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# what a GeoJSON layer shows: the page styles each kind (and the legend names it)
LayerKind = Literal["boundary", "river", "road", "hazard", "shelter", "route", "other"]


class MapLayer(_Model):
    """A GeoJSON layer of the offline basemap, served by the gateway: village boundaries,
    rivers, roads, hazard points (隐患点), shelters (避险点), evacuation routes (转移路线)."""

    name: str = Field(min_length=1, max_length=40)  # shown in the legend and layer switch
    file: Path  # .geojson / .json; relative paths are read from the station file's folder
    kind: LayerKind = "other"
    color: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$")
    visible: bool = True  # switched on when the page opens


class MapSection(_Model):
    layers: list[MapLayer] = []
    background: Path | None = None  # relative paths are read from the station file's folder
    # west, south, east, north: lon/lat of the background's edges
    bounds: tuple[float, float, float, float] | None = None

    @model_validator(mode="after")
    def _check(self) -> MapSection:
        if self.background is not None:
            if self.background.suffix.lower() not in MAP_TYPES:
                raise ValueError(f"background: an {', '.join(MAP_TYPES)} file")
            if self.bounds is None:
                raise ValueError("bounds: needed with a background (west, south, east, north)")
        if self.bounds is not None:
            w, s, e, n = self.bounds
            if not (w < e and s < n):
                raise ValueError("bounds: west < east and south < north")
        return self


class DashboardSection(_Model):
    map: MapSection = MapSection()
    alarm_repeat_s: float = Field(default=4.0, ge=1, le=600)  # the alarm tone repeats
