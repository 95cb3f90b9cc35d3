"""Escalation to the county. PLACEHOLDER (helper 19a): waits forever; the county duty
room's escalation (helper 19b) replaces this file."""

from __future__ import annotations

import asyncio

from gateway.county.config import CountyConfig
from gateway.county.store import CountyStore


async def run(cfg: CountyConfig, store: CountyStore) -> None:
    await asyncio.Event().wait()
