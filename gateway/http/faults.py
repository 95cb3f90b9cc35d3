"""HTTP routes about faults the gateway survived: reports lost before it (sequence gaps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from gateway.ingest import seq_gaps
from gateway.storage.store import Store


def add_routes(app: FastAPI, reader: Callable[[], Store]) -> None:
    @app.get("/api/seq-gaps")
    def gaps() -> list[dict[str, Any]]:
        """Per device: reports it numbered (`seq`) that never reached the gateway."""
        return [g.to_json() for g in seq_gaps.counts(reader())]
