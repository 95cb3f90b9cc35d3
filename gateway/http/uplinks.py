"""HTTP route of the uplinks to the county: GET /api/uplinks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI

from gateway.storage.store import Store

if TYPE_CHECKING:
    from gateway.http.app import Context


def add_uplink_routes(app: FastAPI, ctx: Context, reader: Callable[[], Store]) -> None:
    @app.get("/api/uplinks")
    def uplinks() -> dict[str, object]:
        """Per uplink: connected, backlog (rows not yet confirmed), last confirmed seq,
        rows dropped to the outbox's disk budget; and the outbox's size and budget."""
        if ctx.uplinks is None:
            return {"outbox": None, "uplinks": {}}
        return ctx.uplinks.status(reader())
