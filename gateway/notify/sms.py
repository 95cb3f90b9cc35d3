"""SMS channel: a GSM modem on a serial port, spoken to with AT commands in text mode
(`AT+CMGF=1`) with UCS2 strings (`AT+CSCS="UCS2"`), so Chinese arrives intact. Replies
are read with `AT+CMGL` (after a `+CMTI` or every `poll_s`) and deleted; one carrying a
ticket's short code acknowledges the call. The modem is owned by one thread; a modem that
answers `+CMS ERROR`, does not answer, or is unplugged fails the attempt (retried by the
dispatcher) and is reopened on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import termios
import time
import tty
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.config.loop import SmsSection
from gateway.notify.base import AckIn, Delivery, DeliveryError, OnAck
from gateway.notify.gsm import Sms, cmti_index, find_code, fit, parse_cmgl, parse_cmgr, ucs2

log = logging.getLogger("stationgw.notify.sms")

_BAUD = {
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}
_FINAL_ERRORS = ("ERROR", "+CMS ERROR", "+CME ERROR")


class Modem:
    """A blocking AT conversation with timeouts; not thread-safe (one owner thread)."""

    def __init__(self, port: Path, baud: int = 115200, timeout_s: float = 10.0) -> None:
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.fd: int | None = None
        self.buf = b""
        self.urcs: list[str] = []  # unsolicited lines seen (+CMTI …)

    def open(self) -> None:
        try:
            fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise DeliveryError(f"modem {self.port} unavailable: {e.strerror}") from e
        try:
            tty.setraw(fd)
            attrs = termios.tcgetattr(fd)
            speed = _BAUD.get(self.baud, termios.B115200)
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except termios.error:
            pass  # not every pseudo-terminal takes a speed
        self.fd = fd
        self.buf = b""
        try:
            self.command("AT")
            self.command("ATE0")
            self.command("AT+CMGF=1")
            self.command('AT+CSCS="UCS2"')
            self.command("AT+CNMI=2,1,0,0,0")
        except DeliveryError:
            self.close()
            raise

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = None

    def _ensure(self) -> int:
        if self.fd is None:
            self.open()
        assert self.fd is not None
        return self.fd

    def _write(self, data: bytes) -> None:
        fd = self._ensure()
        try:
            os.write(fd, data)
        except OSError as e:
            self.close()
            raise DeliveryError(f"modem {self.port} unplugged: {e.strerror}") from e

    def _fill(self, deadline: float) -> bool:
        fd = self._ensure()
        wait = deadline - time.monotonic()
        if wait <= 0:
            return False
        try:
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                return False
            chunk = os.read(fd, 4096)
        except OSError as e:
            self.close()
            raise DeliveryError(f"modem {self.port} unplugged: {e.strerror}") from e
        if not chunk:
            self.close()
            raise DeliveryError(f"modem {self.port} unplugged (end of file)")
        self.buf += chunk
        return True

    def _line(self, deadline: float) -> str | None:
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("ascii", errors="replace").strip()

    def _answer(self, deadline: float) -> list[str]:
        lines: list[str] = []
        while True:
            line = self._line(deadline)
            if line is None:
                raise DeliveryError(f"no answer from modem {self.port}")
            if not line:
                continue
            if line == "OK":
                return lines
            if line.startswith(_FINAL_ERRORS):
                raise DeliveryError(f"modem: {line}")
            if line.startswith("+CMTI:"):
                self.urcs.append(line)
                continue
            lines.append(line)

    def command(self, cmd: str, timeout_s: float | None = None) -> list[str]:
        self._write(cmd.encode() + b"\r")
        return self._answer(time.monotonic() + (timeout_s or self.timeout_s))

    def send(self, phone: str, text: str) -> str:
        """Send one message; the message reference the network gave it."""
        deadline = time.monotonic() + self.timeout_s
        self._write(f'AT+CMGS="{ucs2(phone)}"\r'.encode())
        while b">" not in self.buf:
            if b"\r\n" in self.buf:
                raw, _, self.buf = self.buf.partition(b"\r\n")
                line = raw.decode("ascii", errors="replace").strip()
                if line.startswith(_FINAL_ERRORS):
                    raise DeliveryError(f"modem: {line}")
                if line.startswith("+CMTI:"):
                    self.urcs.append(line)
                continue
            if not self._fill(deadline):
                raise DeliveryError(f"no prompt from modem {self.port}")
        self.buf = self.buf.split(b">", 1)[1].lstrip(b" ")
        self._write(ucs2(text).encode() + b"\x1a")
        lines = self._answer(time.monotonic() + max(self.timeout_s, 30.0))
        ref = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("+CMGS:")), "")
        return ref

    def notified(self) -> list[Sms]:
        """Messages announced by `+CMTI` (seen while idle or during other commands), read
        one by one with `AT+CMGR` and deleted."""
        fd = self._ensure()
        with contextlib.suppress(BlockingIOError):
            while select.select([fd], [], [], 0)[0]:
                if not self._fill(time.monotonic() + 0.05):
                    break
        while b"\r\n" in self.buf:
            raw, _, self.buf = self.buf.partition(b"\r\n")
            line = raw.decode("ascii", errors="replace").strip()
            if line.startswith("+CMTI:"):
                self.urcs.append(line)
        out: list[Sms] = []
        for urc in self.urcs:
            index = cmti_index(urc)
            if index is None:
                continue
            msg = parse_cmgr(index, self.command(f"AT+CMGR={index}"))
            if msg is not None:
                out.append(msg)
        self.urcs.clear()
        return out

    def inbox(self) -> list[Sms]:
        """Every message stored on the SIM: one stays there until `delete`, after its
        acknowledgement is stored, so a crash in between reads it again."""
        self.urcs.clear()
        return parse_cmgl(self.command(f'AT+CMGL="{ucs2("ALL")}"'))

    def delete(self, index: int) -> None:
        self.command(f"AT+CMGD={index}")


class SmsChannel:
    name = "sms"

    def __init__(self, settings: SmsSection, on_ack: OnAck) -> None:
        self.settings = settings
        self.on_ack = on_ack
        self.modem = Modem(settings.port, settings.baud, settings.timeout_s)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gsm-modem")
        self._poller: asyncio.Task[None] | None = None
        self._handling: set[int] = set()  # SIM indexes whose acknowledgement is in flight
        self._deletes: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None
        self.stopping = False  # a voice call in progress hangs up when the gateway stops

    async def start(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="sms-inbox")

    async def stop(self) -> None:
        self.stopping = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.thread, self.modem.close)
        self.thread.shutdown(wait=True)

    async def send(self, d: Delivery) -> None:
        text = fit(str(d.body.get("text") or d.body.get("title") or ""))
        loop = asyncio.get_running_loop()
        ref = await loop.run_in_executor(self.thread, self.modem.send, d.target, text)
        log.info("SMS to %s sent (reference %s)", d.body.get("name") or d.target, ref)

    def _delete(self, index: int) -> None:
        async def run() -> None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self.thread, self.modem.delete, index)
            except DeliveryError as e:
                log.warning("SMS %d not deleted from the SIM: %s", index, e)
            finally:
                self._handling.discard(index)

        task = asyncio.get_running_loop().create_task(run())
        self._deletes.add(task)
        task.add_done_callback(self._deletes.discard)

    async def _poll(self, urc_s: float = 0.2) -> None:
        """+CMTI notifications every `urc_s`; a full `AT+CMGL` of unread messages every
        `poll_s` as well, for messages whose notification was lost."""
        loop = asyncio.get_running_loop()
        last_list = 0.0
        while True:
            try:
                if time.monotonic() - last_list >= self.settings.poll_s:
                    last_list = time.monotonic()
                    msgs = await loop.run_in_executor(self.thread, self.modem.inbox)
                else:
                    msgs = await loop.run_in_executor(self.thread, self.modem.notified)
                self.last_error = None
            except DeliveryError as e:
                if self.last_error != str(e):
                    log.warning("SMS inbox: %s", e)
                self.last_error = str(e)
                msgs = []
            for m in msgs:
                if m.index in self._handling:
                    continue
                self._handling.add(m.index)
                code = find_code(m.text)
                log.info("SMS from %s: %s", m.sender, m.text)
                if code is None:
                    self._delete(m.index)
                else:

                    def done(index: int = m.index) -> None:
                        self._delete(index)

                    self.on_ack(AckIn(by=m.sender, via="sms", code=code, note=m.text, done=done))
            await asyncio.sleep(min(urc_s, self.settings.poll_s))
