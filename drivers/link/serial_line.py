"""A serial line read and written from asyncio, that reopens itself when it goes away.

pyserial opens and configures the port (baud, parity, …); reads and writes use the file
descriptor with the event loop's reader, so no thread is needed. A USB adapter pulled
out, or a pseudo-terminal whose other end closed, raises `LineLost`; `open()` then
retries until the path is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os

import serial

from drivers.link.config import SerialPort
from gateway.core.errors import DriverError

log = logging.getLogger("stationgw.serial")


class LineLost(DriverError):
    """The serial line went away (adapter unplugged, other end of a pty closed)."""


class SerialLine:
    def __init__(self, port: SerialPort, *, retry_s: float = 0.5) -> None:
        self.port = port
        self.retry_s = retry_s
        self._ser: serial.Serial | None = None
        self.opened = 0  # how many times it was opened (reconnects + 1)

    @property
    def is_open(self) -> bool:
        return self._ser is not None

    async def open(self) -> None:
        """Open the port, retrying until it exists (cancel to give up)."""
        warned = False
        while True:
            try:
                self._ser = serial.Serial(
                    str(self.port.path),
                    baudrate=self.port.baud,
                    bytesize=self.port.bytesize,
                    parity=self.port.parity,
                    stopbits=self.port.stopbits,
                    timeout=0,
                )
            except (serial.SerialException, OSError, ValueError) as e:
                if not warned:
                    log.warning(
                        "serial %s (%s): cannot open (%s); retrying",
                        self.port.id,
                        self.port.path,
                        e,
                    )
                    warned = True
                await asyncio.sleep(self.retry_s)
                continue
            self.opened += 1
            log.info("serial %s (%s) open", self.port.id, self.port.path)
            return

    def _fd(self) -> int:
        if self._ser is None:
            raise LineLost(f"serial {self.port.id} is not open")
        fd: int = self._ser.fileno()
        return fd

    async def read(self, wait_s: float | None = None) -> bytes:
        """Bytes that arrived (at least one); b"" when `wait_s` passed without any."""
        fd = self._fd()
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(fd, ready.set)
        try:
            try:
                await asyncio.wait_for(ready.wait(), wait_s)
            except TimeoutError:
                return b""
        finally:
            loop.remove_reader(fd)
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as e:
            raise LineLost(f"serial {self.port.id}: {os.strerror(e.errno or errno.EIO)}") from e
        if not data:
            raise LineLost(f"serial {self.port.id}: end of file")
        return data

    async def write(self, data: bytes) -> None:
        fd = self._fd()
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.005)
                continue
            except OSError as e:
                raise LineLost(f"serial {self.port.id}: {os.strerror(e.errno or errno.EIO)}") from e
            view = view[n:]

    def close(self) -> None:
        if self._ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._ser.close()
            self._ser = None
