"""In-process event hub feeding server-sent events: bounded per subscriber.

A subscriber that cannot keep up is disconnected (and told why in the log) instead of
growing memory; its browser reconnects and reloads the state through the REST API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

log = logging.getLogger("stationgw.events")


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str  # JSON text

    def sse(self) -> bytes:
        return f"event: {self.name}\ndata: {self.data}\n\n".encode()


_CLOSE = Event("", "")


class Hub:
    def __init__(self, per_subscriber: int = 1000) -> None:
        self.per_subscriber = per_subscriber
        self._subs: set[asyncio.Queue[Event]] = set()

    def publish(self, name: str, payload: object) -> None:
        if not self._subs:
            return
        event = Event(name, json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
        for q in list(self._subs):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                self._subs.discard(q)
                q.get_nowait()
                q.put_nowait(_CLOSE)
                log.warning("event subscriber too slow (%d queued); disconnected", q.qsize())

    def subscribers(self) -> int:
        return len(self._subs)

    async def subscribe(self, keepalive_s: float = 15.0) -> AsyncIterator[bytes]:
        q: asyncio.Queue[Event] = asyncio.Queue(self.per_subscriber)
        self._subs.add(q)
        try:
            yield b": connected\n\n"
            while True:
                try:
                    async with asyncio.timeout(keepalive_s):  # no task per event
                        event = await q.get()
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                # what one commit published goes out as one write
                out = []
                while event is not _CLOSE:
                    out.append(event.sse())
                    if q.empty():
                        break
                    event = q.get_nowait()
                if out:
                    yield b"".join(out)
                if event is _CLOSE:
                    return
        finally:
            self._subs.discard(q)

    def close_all(self) -> None:
        for q in list(self._subs):
            while not q.empty():
                q.get_nowait()
            q.put_nowait(_CLOSE)
        self._subs.clear()
