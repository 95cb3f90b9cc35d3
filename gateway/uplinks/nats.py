"""The NATS uplink to the county's JetStream cluster: outbox rows as JetStream messages.

The subjects and payloads are the county bus contract (gateway/county/__init__.py): the
same JSON as the MQTT uplink's, on `county.<station>.readings|tickets|health`, each with
the header `Nats-Msg-Id: <station>:<first seq>` so JetStream stores a resend inside its
duplicate window once (and the county's writes are idempotent on (station, seq) beyond it).

Publishing is pipelined (`publish_async`, up to `inflight` messages awaiting their
JetStream ack); the cursor moves over the contiguous prefix of acked messages only, so an
item leaves the outbox after JetStream stored it on a quorum of the stream's replicas. A
failed or missing ack (a node died, the cluster is electing a leader) drops the window
and sends again from the cursor, in seq order; the duplicate window makes the repeats
harmless. A backlog drains at `max_rate` items a second, and ticket events and health
changes still waiting are sent ahead of older readings (they are few; a returning
station tells the county about today's warning before last night's rain).

Beside the outbox, `county.<station>.state` every `state_interval_s` and at connect:
what the county needs to show the station by its own names (`state_body`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import shutil
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from gateway.config.station import Config
from gateway.config.uplinks import NatsUplinkSection
from gateway.core.clock import SANE_MS
from gateway.uplinks.feed import Feed
from gateway.uplinks.mqtt import Message, messages
from gateway.uplinks.plans import Apply, PlanWatcher

log = logging.getLogger("stationgw.uplink.nats")


def gateway_version() -> str:
    try:
        return importlib.metadata.version("stationgw")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0"


def no_plan() -> dict[str, object]:
    """The plan status of a station that runs no county plan (yet)."""
    return {"version": None, "hash": None, "errors": []}


def state_body(
    cfg: Config,
    station: str,
    now_ms: int,
    *,
    backlog: int,
    disk_free_mb: float | None,
    plan: dict[str, object],
) -> dict[str, object]:
    """The `county.<st>.state` message (the contract's keys). Pure."""
    return {
        "station": station,
        "at": now_ms,
        "name": cfg.station.name,
        "tz": cfg.station.timezone,
        "version": gateway_version(),
        "lon": None,
        "lat": None,
        "villages": [{"id": v.id, "name": v.name} for v in cfg.villages],
        "points": [
            {
                "id": p.id,
                "name": p.name,
                "village": p.village,
                "lon": p.lon,
                "lat": p.lat,
                "kind": p.kind,
            }
            for p in cfg.points
        ],
        "devices": [
            {
                "id": d.id,
                "name": d.name,
                "point": d.point,
                "protocol": d.transport.kind,
                "metrics": {k: {"name": m.name, "unit": m.unit} for k, m in d.metrics.items()},
            }
            for d in cfg.devices
        ],
        "people": [
            {"id": p.id, "name": p.name, "role": p.roles[0] if p.roles else None}
            for p in cfg.people
        ],
        "plan": plan,
        "disk_free_mb": disk_free_mb,
        "backlog": backlog,
        "clock": {"sane": now_ms >= SANE_MS, "ms": now_ms},
    }


class _Resend(Exception):
    """The window is lost (a failed or missing ack): send again from the cursor."""


@dataclass(slots=True)
class _Sent:
    future: asyncio.Future[Any] | None  # None: nothing to send (a kind this gateway skips)
    last: int
    at: float  # loop time it was sent
    first: int = 0


def nc_connected(js: JetStreamContext) -> bool:
    return bool(js._nc.is_connected)


class RateLimit:
    """A token bucket of items a second (one second's worth of burst)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.at = clock()

    def delay(self, items: int) -> float:
        """Take `items`; return how long to wait before sending them (0: at once)."""
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= items
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class NatsLink:
    name = "nats"

    def __init__(
        self,
        cfg: NatsUplinkSection,
        station_cfg: Config,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        plan: Callable[[], dict[str, object]] = no_plan,
        max_backoff_s: float = 10,
    ) -> None:
        self.cfg = cfg
        self.station_cfg = station_cfg
        self.station = cfg.station or station_cfg.station.id
        self.prefix = f"county.{self.station}"
        self.clock = clock
        self.plan = plan
        self.max_backoff_s = max_backoff_s
        self.connected = False
        self.confirmed = 0
        self.sent_messages = 0
        self.resends = 0
        self.connections = 0
        self.state_sent = 0
        self.false_duplicates = 0  # duplicate acks for messages the stream did not hold
        self.last_error: str | None = None
        self._feed: Feed | None = None
        # the county's rule plans: watched while connected, once `plans()` wired them
        self.watcher: PlanWatcher | None = None

    def status(self) -> dict[str, object]:
        return {
            "connected": self.connected,
            "servers": list(self.cfg.servers),
            "subjects": f"{self.prefix}.>",
            "messages_sent": self.sent_messages,
            "windows_resent": self.resends,
            "connections": self.connections,
            "state_messages": self.state_sent,
            "false_duplicates": self.false_duplicates,
            "last_error": self.last_error,
            **({"plans": self.watcher.status()} if self.watcher else {}),
        }

    def plans(self, apply: Apply, running: Callable[[], dict[str, object]]) -> None:
        """Watch the county's rule plans for this station (`[uplinks.nats] group`), hand
        each new one to `apply` and report it; `running` says the plan the rules run, for
        the state message. Wired by the composition root (the rules are not this room's)."""
        self.watcher = PlanWatcher(None, self.station, self.cfg.group, apply)
        watcher = self.watcher

        def status() -> dict[str, object]:
            out = running()
            last = watcher.last
            if last is not None and not last.get("ok"):  # refused: said beside the running
                out = {**out, "errors": list(last.get("errors") or [])}
            return out

        self.plan = status

    def _tls(self) -> ssl.SSLContext | None:
        t = self.cfg.tls
        if t is None:
            return None
        ctx = ssl.create_default_context(cafile=str(t.ca_file) if t.ca_file else None)
        if t.cert_file is not None and t.key_file is not None:
            ctx.load_cert_chain(str(t.cert_file), str(t.key_file))
        if t.insecure:
            ctx.check_hostname = False
        return ctx

    async def _connect(self) -> NatsClient:
        cfg = self.cfg

        async def on_error(e: Exception) -> None:
            self.last_error = f"{type(e).__name__}: {e}"

        async def on_disconnected() -> None:
            if self.connected:
                log.warning("county cluster: connection lost; reconnecting")
            self.connected = False

        async def on_reconnected() -> None:
            self.connected = True
            self.connections += 1
            log.info("county cluster: reconnected to %s", nc.connected_url)

        opts: dict[str, Any] = {
            "servers": list(cfg.servers),
            "name": f"stationgw-{self.station}",
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": 2,
            # no reconnect buffer: what is published while disconnected fails at once and
            # is sent again from the cursor, instead of stale copies flushed on reconnect
            "pending_size": 0,
            "error_cb": on_error,
            "disconnected_cb": on_disconnected,
            "reconnected_cb": on_reconnected,
        }
        if cfg.user is not None:
            opts["user"], opts["password"] = cfg.user, cfg.password
        if cfg.creds_file is not None:
            opts["user_credentials"] = str(cfg.creds_file)
        if (ctx := self._tls()) is not None:
            opts["tls"] = ctx
        nc: NatsClient = await nats.connect(**opts)
        return nc

    async def run(self, feed: Feed) -> None:
        self._feed = feed
        self.confirmed = await feed.cursor()
        delay = 0.5
        while True:
            try:
                nc = await self._connect()
            except (OSError, nats.errors.Error, TimeoutError) as e:
                self.last_error = f"{', '.join(self.cfg.servers)}: {type(e).__name__}: {e}"
                log.info("county cluster: %s; again in %.1f s", self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            delay = 0.5
            self.connected = True
            self.connections += 1
            self.last_error = None
            log.info(
                "county cluster %s connected; sending after seq %d",
                nc.connected_url,
                self.confirmed,
            )
            js = nc.jetstream(timeout=self.cfg.ack_timeout_s)
            state = asyncio.create_task(self._states(js, feed), name="uplink-nats-state")
            plans: asyncio.Task[None] | None = None
            if self.watcher is not None:
                self.watcher.js = js
                plans = asyncio.create_task(self.watcher.run(), name="uplink-nats-plans")
            try:
                while True:
                    try:
                        await self._pump(feed, js)
                    except _Resend as e:
                        self.resends += 1
                        self.last_error = str(e)
                        log.info(
                            "county cluster: %s; sending again after seq %d", e, self.confirmed
                        )
                        await feed.confirm(self.confirmed)
                        await asyncio.sleep(0.2)
            finally:
                for task in (state, plans):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                self.connected = False
                with contextlib.suppress(Exception):
                    await feed.confirm(self.confirmed)
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _publish(self, js: JetStreamContext, m: Message) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = await js.publish_async(
            m.topic, m.payload, headers={"Nats-Msg-Id": f"{self.station}:{m.first}"}
        )
        self.sent_messages += 1
        return fut

    async def _pump(self, feed: Feed, js: JetStreamContext) -> None:
        """Send after the cursor until the window is lost (raises _Resend)."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        window: deque[_Sent] = deque()
        early: dict[int, _Sent] = {}  # events sent ahead of older readings, by seq
        buffered: deque[Message] = deque()
        limit = RateLimit(cfg.max_rate)
        sent = self.confirmed
        saved_at = loop.time()
        try:
            while True:
                now = loop.time()
                while window:  # acks: the cursor moves over the acked prefix
                    head = window[0]
                    if head.future is not None and not head.future.done():
                        if now - head.at > cfg.ack_timeout_s:
                            raise _Resend(f"no ack from JetStream in {cfg.ack_timeout_s:g} s")
                        break
                    if head.future is not None and (
                        head.future.cancelled() or head.future.exception() is not None
                    ):
                        why = "cancelled" if head.future.cancelled() else head.future.exception()
                        raise _Resend(f"publish failed: {why}")
                    if head.future is not None and head.future.result().duplicate:
                        await self._held(js, head)
                    window.popleft()
                    self.confirmed = head.last
                if self.confirmed > feed.confirmed and (not window or now - saved_at > 0.25):
                    await feed.confirm(self.confirmed)
                    saved_at = now
                if len(window) >= cfg.inflight:
                    await self._wait(window[0])
                    continue
                if not buffered:
                    want = cfg.batch * 20
                    rows = await feed.fetch(sent, want)
                    if not rows:
                        if window:
                            await self._wait(window[0])
                        else:
                            await feed.wait(0.5)
                        continue
                    if len(rows) >= want:  # a backlog: its waiting events go first
                        for r in await feed.events_after(rows[-1].seq, 200):
                            if r.seq not in early:
                                (m,) = messages([r], self.prefix, self.station, 1, ".")
                                if m.topic:
                                    early[r.seq] = _Sent(
                                        await self._publish(js, m), m.last, now, m.first
                                    )
                    buffered.extend(messages(rows, self.prefix, self.station, cfg.batch, "."))
                if not nc_connected(js):
                    raise _Resend("not connected")
                while buffered and len(window) < cfg.inflight:
                    m = buffered.popleft()
                    sent = m.last
                    if not m.topic:
                        window.append(_Sent(None, m.last, loop.time()))
                        continue
                    ahead = early.pop(m.first, None)
                    if ahead is not None:
                        window.append(ahead)
                        continue
                    if (pause := limit.delay(m.last - m.first + 1)) > 0:
                        await asyncio.sleep(pause)
                    window.append(_Sent(await self._publish(js, m), m.last, loop.time(), m.first))
        except (nats.errors.Error, OSError) as e:
            raise _Resend(f"{type(e).__name__}: {e}") from None
        finally:
            for s in [*window, *early.values()]:
                if s.future is None:
                    continue
                if not s.future.done():
                    s.future.cancel()
                elif not s.future.cancelled():
                    s.future.exception()  # retrieved: it is the reason we send again

    async def _held(self, js: JetStreamContext, sent: _Sent) -> None:
        """A duplicate ack names the stream seq of the first copy: check that the stream
        holds our message there. (A copy whose proposal was lost while the stream was
        electing a leader must not make its resend look stored.)"""
        ack = sent.future.result() if sent.future is not None else None
        if ack is None:
            return
        try:
            msg = await js.get_msg(ack.stream, seq=ack.seq)
        except nats.js.errors.NotFoundError:
            msg = None
        want = f"{self.station}:{sent.first}"
        got = (msg.headers or {}).get("Nats-Msg-Id") if msg is not None else None
        if got != want:
            self.false_duplicates += 1
            raise _Resend(
                f"JetStream called {want} a duplicate of stream seq {ack.seq}, which holds "
                f"{got or 'nothing'}"
            )

    async def _wait(self, head: _Sent) -> None:
        """Until the head of the window is acked (or a while passed)."""
        if head.future is not None:
            await asyncio.wait({head.future}, timeout=0.5)

    async def _states(self, js: JetStreamContext, feed: Feed) -> None:
        path = self.station_cfg.database.path.parent
        while True:
            try:
                newest = await feed.newest()
                try:
                    free: float | None = shutil.disk_usage(path).free / 1048576
                except OSError:
                    free = None
                body = state_body(
                    self.station_cfg,
                    self.station,
                    self.clock(),
                    backlog=max(0, newest - self.confirmed),
                    disk_free_mb=round(free, 1) if free is not None else None,
                    plan=self.plan(),
                )
                payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
                await js.publish(f"{self.prefix}.state", payload)
                self.state_sent += 1
            except (nats.errors.Error, OSError) as e:
                log.debug("county state message not sent: %s", e)
                await asyncio.sleep(1)
                continue
            await asyncio.sleep(self.cfg.state_interval_s)
