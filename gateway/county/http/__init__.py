"""The county page and API. PLACEHOLDER (helper 19a): only `GET /api/health`; the county
duty room (helper 19b) replaces this file.

`service.run` sets `app.state.consumer` (the instance's `Consumer`) after `create_app`;
`/api/health` shows its counters beside the fleet's from PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request

from gateway.county.config import CountyConfig
from gateway.county.store import CountyStore


def _fleet(store: CountyStore) -> dict[str, Any]:
    with store.connect() as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE last_seen > now() - interval '5 minutes') "
            "FROM stations"
        ).fetchone()
        q = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    return {
        "stations": int(row[0]) if row else 0,
        "online": int(row[1]) if row else 0,
        "quarantined": int(q[0]) if q else 0,
    }


def create_app(cfg: CountyConfig, store: CountyStore) -> FastAPI:
    app = FastAPI(title=f"{cfg.county.name} — stationgw county", docs_url=None, redoc_url=None)

    @app.get("/api/health")
    async def health(request: Request) -> dict[str, Any]:
        consumer = getattr(request.app.state, "consumer", None)
        out: dict[str, Any] = {"county": cfg.county.name}
        out["consumer"] = consumer.status() if consumer is not None else None
        try:
            out["fleet"] = await asyncio.to_thread(_fleet, store)
            out["postgres"] = "ok"
        except Exception as e:  # the page answers while PostgreSQL is down
            out["fleet"] = None
            out["postgres"] = f"{type(e).__name__}: {e}"
        return out

    return app
