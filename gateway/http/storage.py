"""HTTP routes of the time-series store: readings at a chosen resolution, many series in
one answer, storage health."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime

from gateway.storage.series import pick, series_points
from gateway.storage.service import health
from gateway.storage.store import Store

if TYPE_CHECKING:
    from gateway.http.app import Context

Resolution = Literal["raw", "1m", "1h", "1d"]
DAY_MS = 86_400_000


# Times beyond ±2**53 ms (±285,000 years) are no time a station has; larger integers
# failed the answer's JSON encoding (a 500, found by schemathesis)
MAX_MS = 2**53


def _ms(v: int | datetime | None, default: int, name: str) -> int:
    if v is None:
        return default
    if isinstance(v, datetime):
        return int(v.timestamp() * 1000)
    if not -MAX_MS <= v <= MAX_MS:
        raise HTTPException(422, f"{name}: {v} is out of range for a time in UTC ms")
    return v


def add_routes(app: FastAPI, ctx: Context, reader: Callable[[], Store]) -> None:
    @app.get("/api/readings", response_class=JSONResponse)
    def readings(
        device: str,
        metric: str,
        from_: Annotated[int | AwareDatetime | None, Query(alias="from")] = None,
        to: int | AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
        points: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        resolution: Resolution | None = None,
    ) -> Response:
        """Readings of one series; `from`/`to` in UTC ms or ISO 8601 (default: last 24 h).

        Without `points` or `resolution`: the raw readings (`resolution: "raw"`). With
        `points` (the chart's width in pixels): the finest resolution whose points fit it
        — raw, then 1-minute, 1-hour, 1-day rollups, whose points carry `value` (the mean),
        `min`, `max`, `sum` and `count` of the good readings in the bucket (`ts` its start).
        `resolution` forces one."""
        now = int(time.time() * 1000)
        end = _ms(to, now + 1, "to")
        start = _ms(from_, end - DAY_MS, "from")
        store = reader()
        sid = store.known_series_id(device, metric)
        if resolution is None:
            resolution = "raw" if points is None else pick(store, [sid], start, end, points)  # type: ignore[assignment]
        assert resolution is not None
        body = {
            "device": device,
            "metric": metric,
            "from": start,
            "to": end,
            "resolution": resolution,
            "points": series_points(store, sid, start, end, resolution, limit),
        }
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/api/readings/multi", response_class=JSONResponse)
    def readings_multi(
        series: Annotated[list[str], Query(min_length=1, max_length=500)],
        from_: Annotated[int | AwareDatetime | None, Query(alias="from")] = None,
        to: int | AwareDatetime | None = None,
        points: Annotated[int, Query(ge=1, le=100_000)] = 1000,
        resolution: Resolution | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> Response:
        """Many series in one answer, at one resolution (chosen as for /api/readings):
        `series=DEVICE/METRIC`, repeated."""
        now = int(time.time() * 1000)
        end = _ms(to, now + 1, "to")
        start = _ms(from_, end - DAY_MS, "from")
        keys: list[tuple[str, str]] = []
        for i, s in enumerate(series):
            device, sep, metric = s.partition("/")
            if not sep or not device or not metric:
                raise HTTPException(422, f"series[{i}]: {s!r} is not DEVICE/METRIC")
            keys.append((device, metric))
        store = reader()
        sids = [store.known_series_id(d, m) for d, m in keys]
        chosen: str = resolution or pick(store, sids, start, end, points)
        body = {
            "from": start,
            "to": end,
            "resolution": chosen,
            "series": [
                {
                    "device": d,
                    "metric": m,
                    "points": series_points(store, sid, start, end, chosen, limit),
                }
                for (d, m), sid in zip(keys, sids, strict=True)
            ],
        }
        # serialised here with orjson: FastAPI's encoder and json.dumps spent most of the
        # answer's time on 50 series of points (floats written exactly, shortest form)
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/api/storage")
    def storage() -> dict[str, Any]:
        """Storage health: sizes, points per tier, free space, disk guard, last compaction."""
        return health(reader(), ctx.config.storage)
