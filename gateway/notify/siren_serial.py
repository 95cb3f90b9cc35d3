"""Siren / broadcast actuators on a serial line (RS-232/485 through a converter), with a
plain ASCII line protocol — one command, one answer, per line:

    gateway → siren   SIREN <id> SOUND <level>\\r\\n
    siren → gateway   ACK <id>\\r\\n          (or NAK <id> <reason>\\r\\n)

No answer with the command's id within `confirm_s` fails the attempt; the dispatcher
retries it with backoff and reports it failed after the last one. Each line is owned by
one thread; a line that cannot be opened or goes away fails the attempt and is reopened
on the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import time
import tty
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.notify.base import Delivery, DeliveryError

_BAUD = {
    1200: termios.B1200,
    2400: termios.B2400,
    4800: termios.B4800,
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    115200: termios.B115200,
}


class SerialSirenLine:
    """A blocking conversation with one actuator on one serial line."""

    def __init__(self, port: Path, baud: int, confirm_s: float) -> None:
        self.port = port
        self.baud = baud
        self.confirm_s = confirm_s
        self.fd: int | None = None
        self.buf = b""

    def _open(self) -> int:
        if self.fd is not None:
            return self.fd
        try:
            fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise DeliveryError(f"siren line {self.port} unavailable: {e.strerror}") from e
        with contextlib.suppress(termios.error):
            tty.setraw(fd)
            attrs = termios.tcgetattr(fd)
            attrs[4] = attrs[5] = _BAUD.get(self.baud, termios.B9600)
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        self.fd, self.buf = fd, b""
        return fd

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = None

    def sound(self, attempt: str, level: str) -> None:
        fd = self._open()
        try:
            os.write(fd, f"SIREN {attempt} SOUND {level}\r\n".encode())
            deadline = time.monotonic() + self.confirm_s
            while True:
                while b"\n" in self.buf:
                    raw, _, self.buf = self.buf.partition(b"\n")
                    words = raw.decode("ascii", errors="replace").split()
                    if len(words) >= 2 and words[1] == attempt:
                        if words[0] == "ACK":
                            return
                        if words[0] == "NAK":
                            raise DeliveryError(f"siren refused: {' '.join(words[2:])}")
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                    raise DeliveryError(f"siren: no confirmation within {self.confirm_s} s")
                chunk = os.read(fd, 1024)
                if not chunk:
                    raise OSError(5, "end of file")
                self.buf += chunk
        except OSError as e:
            self.close()
            raise DeliveryError(f"siren line {self.port} gone: {e.strerror or e}") from e


class SerialSirens:
    """Serial sirens by device id; one thread per line so none waits for another."""

    def __init__(self, lines: dict[str, SerialSirenLine]) -> None:
        self.lines = lines
        self._threads = {d: ThreadPoolExecutor(1, thread_name_prefix=f"siren-{d}") for d in lines}

    def __contains__(self, device: object) -> bool:
        return device in self.lines

    async def send(self, d: Delivery) -> None:
        line = self.lines[d.target]
        level = str(d.body.get("level") or "red")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._threads[d.target], line.sound, f"d{d.id}", level)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for device, line in self.lines.items():
            await loop.run_in_executor(self._threads[device], line.close)
            self._threads[device].shutdown(wait=True)
