"""Start the field drivers a station file configures, each as its own supervised task.

A driver that crashes is logged and restarted with backoff; it never stops the gateway
or the other drivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from drivers.cigem_mqtt import CigemDriver
from drivers.context import DriverContext
from drivers.dtu.modbus import DtuModbusMaster  # issue 22
from drivers.dtu.server import DtuDriver  # issue 22
from drivers.gb26875_server import Gb26875Driver
from drivers.handheld_io import HandheldDriver
from drivers.hj212.config import Hj212Section, Hj212Transport  # issue 22
from drivers.hj212.server import Hj212Driver  # issue 22
from drivers.modbus_master import ModbusBus
from drivers.modbus_tcp import ModbusTcpEndpoint, endpoints  # issue 22
from drivers.sl651_server import Sl651Driver
from gateway.errors import DriverError
from gateway.transports import (
    CigemTransport,
    Gb26875Section,
    Gb26875Transport,
    HandheldTransport,
    Sl651Section,
    Sl651Transport,
)

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
    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        self.tasks: list[asyncio.Task[None]] = []
        self.sl651: Sl651Driver | None = None
        self.modbus: dict[str, ModbusBus] = {}
        self.cigem: CigemDriver | None = None
        self.gb26875: Gb26875Driver | None = None
        self.handheld: HandheldDriver | None = None
        self.dtu: DtuDriver | None = None  # issue 22
        self.dtu_modbus: dict[str, DtuModbusMaster] = {}
        self.modbus_tcp: dict[str, ModbusTcpEndpoint] = {}
        self.hj212: Hj212Driver | None = None
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        cfg = self.ctx.config
        sl651_devices = [d for d in cfg.devices if isinstance(d.transport, Sl651Transport)]
        if cfg.sl651 is not None or sl651_devices:
            self.sl651 = Sl651Driver(self.ctx, cfg.sl651 or Sl651Section())
            if self.sl651.section.listen is not None:
                self._servers.append(await _listen("SL651", self.sl651.serve))
        panels = [d for d in cfg.devices if isinstance(d.transport, Gb26875Transport)]
        if cfg.gb26875 is not None or panels:
            self.gb26875 = Gb26875Driver(self.ctx, cfg.gb26875 or Gb26875Section())
            if self.gb26875.section.listen is not None:
                self._servers.append(await _listen("GB26875", self.gb26875.serve))
        if any(isinstance(d.transport, HandheldTransport) for d in cfg.devices):
            self.handheld = HandheldDriver(self.ctx)
            self._spawn("handheld", self.handheld.run)
        for port in cfg.serial_ports:
            if port.protocol == "sl651" and self.sl651 is not None:
                self._spawn(f"sl651 serial {port.id}", self.sl651.run_serial, port)
            elif port.protocol == "gb26875" and self.gb26875 is not None:
                self._spawn(f"gb26875 serial {port.id}", self.gb26875.run_serial, port)
            elif port.protocol == "handheld_dock" and self.handheld and port.device:
                self._spawn(f"dock {port.id}", self.handheld.run_dock, port, port.device)
            elif port.protocol == "modbus_rtu":
                bus = ModbusBus(self.ctx, port)
                if bus.slaves:
                    self.modbus[port.id] = bus
                    self._spawn(f"modbus {port.id}", bus.run)
        if any(isinstance(d.transport, CigemTransport) for d in cfg.devices):
            self.cigem = CigemDriver(self.ctx)
            self._spawn("cigem", self.cigem.run)
        await self._start_issue22()

    async def _start_issue22(self) -> None:
        """DTUs (and the Modbus masters behind them), Modbus TCP endpoints, HJ 212."""
        cfg = self.ctx.config
        if cfg.dtu:
            if self.sl651 is None and any(d.protocol == "sl651" for d in cfg.dtu):
                self.sl651 = Sl651Driver(self.ctx, cfg.sl651 or Sl651Section())
            self.dtu = DtuDriver(self.ctx, cfg.dtu, self.sl651)
            try:
                self._servers.extend(await self.dtu.serve())
            except OSError as e:
                raise DriverError(f"DTU listener: {e.strerror or e}") from e
            for d in cfg.dtu:
                master = DtuModbusMaster(self.ctx, self.dtu, d)
                if master.slaves:
                    self.dtu_modbus[d.id] = master
                    self._spawn(f"modbus behind dtu {d.id}", master.run)
        for (host, port), slaves in endpoints(self.ctx).items():
            ep = self.modbus_tcp[f"{host}:{port}"] = ModbusTcpEndpoint(self.ctx, host, port, slaves)
            self._spawn(f"modbus tcp {host}:{port}", ep.run)
        analysers = [d for d in cfg.devices if isinstance(d.transport, Hj212Transport)]
        if cfg.hj212 is not None or analysers:
            self.hj212 = Hj212Driver(self.ctx, cfg.hj212 or Hj212Section())
            if self.hj212.section.listen is not None:
                self._servers.append(await _listen("HJ 212", self.hj212.serve))

    def _spawn(self, name: str, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        task = asyncio.create_task(supervise(name, lambda: fn(*args)), name=name)
        self.tasks.append(task)

    def dtu_status(self) -> list[dict[str, object]]:  # issue 22: GET /api/dtus
        return self.dtu.status() if self.dtu is not None else []

    def ports(self) -> list[int]:
        return [s.sockets[0].getsockname()[1] for s in self._servers if s.sockets]

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
        if self.sl651 is not None:
            self.sl651.close_connections()
        if self.gb26875 is not None:
            self.gb26875.close_connections()
        for driver in (self.dtu, self.hj212):  # issue 22
            if driver is not None:
                driver.close_connections()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in self._servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(s.wait_closed(), 5)
