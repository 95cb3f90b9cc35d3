"""`stationgw county -c county.toml`: one instance of the county service.

Migrates the store, then runs side by side the consumer (the durable consumer every
instance shares), the county page and API under uvicorn, and escalation. Run two or more
instances (on two machines, each with the same county.toml) for availability: any of them
serves the page, and the stream's messages go to whichever fetches first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Generator

import psycopg
import uvicorn

from gateway.core.errors import GatewayError
from gateway.county import escalation
from gateway.county.config import CountyConfig
from gateway.county.consumer import Consumer
from gateway.county.http import create_app
from gateway.county.store import CountyStore

log = logging.getLogger("stationgw.county")


class _Server(uvicorn.Server):
    """uvicorn inside our loop: the service owns the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _migrate(store: CountyStore) -> int:
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(store.migrate)
        except psycopg.OperationalError as e:
            log.warning("PostgreSQL not reachable (%s); again in %.1f s", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


def listen(host: str, port: int) -> socket.socket:
    """The page's listening socket, taken before anything starts: a port in use is said
    plainly instead of uvicorn exiting from inside the service."""
    try:
        return socket.create_server((host, port))
    except OSError as e:
        raise GatewayError(
            f"county page: cannot listen on {host}:{port}: {e.strerror or e} (a second "
            "instance on this machine needs its own [http] port or --http-port)"
        ) from None


async def run(cfg: CountyConfig, stop: asyncio.Event | None = None) -> None:
    """Until `stop` is set (or forever)."""
    sock = listen(cfg.http.host, cfg.http.port)
    try:
        await _serve(cfg, stop, sock)
    finally:
        sock.close()


async def _serve(cfg: CountyConfig, stop: asyncio.Event | None, sock: socket.socket) -> None:
    store = CountyStore(cfg.postgres.dsn)
    version = await _migrate(store)
    name = f"{socket.gethostname()}-{os.getpid()}"
    log.info("county %s: store at migration %d; instance %s", cfg.county.name, version, name)
    consumer = Consumer(cfg, store, name=name)
    app = create_app(cfg, store)
    app.state.consumer = consumer
    server = _Server(
        uvicorn.Config(
            app, host=cfg.http.host, port=cfg.http.port, log_level="warning", lifespan="off"
        )
    )
    tasks = [
        asyncio.create_task(consumer.run(), name="county-consumer"),
        asyncio.create_task(server.serve(sockets=[sock]), name="county-http"),
        asyncio.create_task(escalation.run(cfg, store), name="county-escalation"),
    ]
    log.info("county page on http://%s:%d/", cfg.http.host, cfg.http.port)
    waits: set[asyncio.Future[object]] = set(tasks)  # type: ignore[arg-type]
    if stop is not None:
        waits.add(asyncio.ensure_future(stop.wait()))
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is tasks[1]:  # uvicorn ends by itself only when it cannot listen
                raise GatewayError(
                    f"county page: cannot listen on {cfg.http.host}:{cfg.http.port} "
                    "(in use? two instances on one machine need their own [http] port)"
                )
            if t in tasks and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        server.should_exit = True
        for t in waits:
            t.cancel()
        for t in waits:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
