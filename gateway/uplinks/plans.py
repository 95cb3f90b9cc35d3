"""The county's rule plans, watched by the station over its NATS connection (#19 item 4).

The county publishes plans to the JetStream key-value bucket `county_plans` under `all`,
`group.<g>` or `station.<st>` (gateway/county/__init__.py). The station watches the
keys that concern it; the most specific one that holds a plan is the one it runs
(`station.<st>` over `group.<g>` over `all`). Each new plan (version, hash) is handed to
`apply` — the rules service's `apply_plan`, wired by the composition root, so this room
does not import the rules — and what came of it is reported on `county.<st>.plan`:
version, hash, ok and the errors, every time a plan is tried and once at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("stationgw.uplink.plans")

BUCKET = "county_plans"


class Result(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def errors(self) -> list[str]: ...

    def to_json(self, station: str, at: int) -> dict[str, Any]: ...


Apply = Callable[[Any, str], Awaitable[Result]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def keys_for(station: str, group: str | None) -> list[str]:
    """The keys that concern a station, the most specific first."""
    return [f"station.{station}", *([f"group.{group}"] if group else []), "all"]


def choose(values: dict[str, bytes], keys: list[str]) -> tuple[str, bytes] | None:
    for k in keys:
        if k in values:
            return k, values[k]
    return None


class PlanWatcher:
    def __init__(
        self,
        js: Any,  # nats.js.JetStreamContext of the station's nats uplink (set on connect)
        station: str,
        group: str | None,
        apply: Apply,
        *,
        bucket: str = BUCKET,
        clock: Callable[[], int] = now_ms,
        retry_s: float = 5.0,
    ) -> None:
        self.js = js
        self.station = station
        self.keys = keys_for(station, group)
        self.apply = apply
        self.bucket = bucket
        self.clock = clock
        self.retry_s = retry_s
        self.values: dict[str, bytes] = {}
        self.tried: tuple[str, bytes] | None = None  # the (key, value) last handed to apply
        self.last: dict[str, Any] | None = None  # the last report sent

    def status(self) -> dict[str, Any]:
        return {"keys": self.keys, "last_report": self.last}

    async def run(self) -> None:
        """Watch until cancelled; a bucket not made yet or a lost connection is waited for."""
        import nats.errors
        import nats.js.errors

        while True:
            try:
                kv = await self.js.key_value(self.bucket)
                watcher = await kv.watchall()
                try:
                    await self._follow(watcher)
                finally:
                    await watcher.stop()
            except asyncio.CancelledError:
                raise
            except (nats.js.errors.BucketNotFoundError, nats.errors.Error, OSError) as e:
                log.info("county plans: %s; trying again in %s s", type(e).__name__, self.retry_s)
            await asyncio.sleep(self.retry_s)

    async def _follow(self, watcher: Any) -> None:
        started = False
        async for entry in watcher:
            if entry is None:  # the values there were when the watch began, all seen
                started = True
                await self.evaluate()
                continue
            if entry.key not in self.keys:
                continue
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                self.values.pop(entry.key, None)
            else:
                self.values[entry.key] = bytes(entry.value)
            if started:
                await self.evaluate()

    async def evaluate(self) -> None:
        """Apply the plan that concerns this station, if it is new; report the outcome."""
        chosen = choose(self.values, self.keys)
        if chosen is None or chosen == self.tried:
            return
        self.tried = chosen
        key, raw = chosen
        try:
            body: Any = json.loads(raw)
        except ValueError as e:
            await self.report(
                {
                    "station": self.station,
                    "at": self.clock(),
                    "version": None,
                    "hash": None,
                    "ok": False,
                    "errors": [f"{key}: not JSON ({e})"],
                }
            )
            return
        result = await self.apply(body, key)
        await self.report(result.to_json(self.station, self.clock()))

    async def report(self, msg: dict[str, Any]) -> None:
        self.last = msg
        data = json.dumps(msg, ensure_ascii=False).encode()
        try:
            await self.js.publish(f"county.{self.station}.plan", data)
        except Exception as e:  # the next plan or restart reports again
            log.warning("county plan report not sent: %s", e)
