"""Start the field drivers a station file configures, each as its own supervised task.

Which protocols exist is drivers/registry.py's table; a protocol starts when a device uses
it or its station-file section is given. A driver that crashes is logged and restarted with
backoff; it never stops the gateway or the other drivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from drivers.host import FieldSetup, Host
from drivers.registry import PROTOCOLS
from gateway.config.station import Config
from gateway.core.errors import DriverError

log = logging.getLogger("stationgw.field")


async def supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    delay = 1.0
    while True:
        try:
            await run()
            log.warning("%s ended; restarting in %.0f s", name, delay)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in %.0f s", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def _listen(what: str, serve: Callable[[], Awaitable[asyncio.Server]]) -> asyncio.Server:
    try:
        return await serve()
    except OSError as e:
        raise DriverError(f"{what} listener: {e.strerror or e}") from e


class FieldDrivers:
    def __init__(self, host: Host, config: Config) -> None:
        self.host = host
        self.config = config
        self.tasks: list[asyncio.Task[None]] = []
        self.drivers: dict[str, Any] = {}  # protocol kind -> its running driver
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        cfg = self.config
        for kind, protocol in PROTOCOLS.items():
            if protocol.start is None:
                continue
            devices = [d for d in cfg.devices if d.transport.kind == kind]  # none for a link
            section = getattr(cfg, kind, None)
            if not devices and (section is None or kind not in cfg.model_fields_set):
                continue
            setup = FieldSetup(devices, section, cfg.serial_ports, self._spawn, _listen)
            setup.drivers = dict(self.drivers)
            self.drivers[kind] = await protocol.starter()(self.host, setup)
            self._servers += setup.servers

    def _spawn(self, name: str, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        task = asyncio.create_task(supervise(name, lambda: fn(*args)), name=name)
        self.tasks.append(task)

    def ports(self) -> list[int]:
        return [s.sockets[0].getsockname()[1] for s in self._servers if s.sockets]

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
        for driver in self.drivers.values():
            close = getattr(driver, "close_connections", None)
            if close is not None:
                close()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in self._servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(s.wait_closed(), 5)
