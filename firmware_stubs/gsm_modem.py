"""A GSM modem that speaks the AT dialogue over a pseudo-terminal, for tests and demos.

It answers the commands the gateway's SMS channel uses (AT, ATE0, AT+CMGF, AT+CSCS,
AT+CNMI, AT+CMGS with its `> ` prompt and Ctrl-Z, AT+CMGL, AT+CMGR, AT+CMGD), decodes UCS2
when the character set is UCS2, and can misbehave: `+CMS ERROR` for the next sends, no
answer at all, or unplugged (the master side closed).

    stub = GsmModemStub.open()        # a new pseudo-terminal; stub.port is its path
    stub.receive("+8613800000001", "收到 0001")   # an incoming SMS: +CMTI to the host

Voice calls (the far end is played by scenarios, one per call, per number):
`ATD<number>;`, `AT+CLCC`, `ATH`, text-to-speech of a Quectel (`AT+QTTS`, `+QTTS: 0`) or
a SIMCom module (`AT+CTTS`, `+CTTS: 0`) — the other make's commands answer `ERROR` — and
DTMF detection (`AT+QTONEDET=1` → `+QTONEDET: 49`; `AT+DDET=1` → `+RXDTMF: 1`).

    stub = GsmModemStub.open(model="simcom")
    stub.scenarios["13800000001"] = ["no_answer", "confirm"]   # redial answered, key 1

Scenarios: `confirm` (answers, presses 1 while the text is spoken), `key:<k>` (answers,
presses k), `answer` (answers, presses nothing), `hangup` (answers, hangs up while it is
spoken), `no_answer` (rings until the host hangs up), `busy` (rejects: `BUSY`). A number
without a scenario left rings unanswered.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
import tty
from dataclasses import dataclass, field


def ucs2(text: str) -> str:
    """UCS2 as a modem writes it with AT+CSCS="UCS2": UTF-16BE code units in hex.

    The modem's own (written apart from the gateway's codec, so a test of one checks
    the other)."""
    return "".join(f"{b:02X}" for b in text.encode("utf-16-be"))


def from_ucs2(hextext: str) -> str:
    h = hextext.strip()
    if not h or len(h) % 4 or any(c not in "0123456789abcdefABCDEF" for c in h):
        return hextext
    try:
        return bytes.fromhex(h).decode("utf-16-be")
    except UnicodeDecodeError:
        return hextext


@dataclass
class Stored:
    index: int
    sender: str
    text: str
    read: bool = False


@dataclass
class GsmModemStub:
    master: int
    port: str
    sent: list[tuple[str, str]] = field(default_factory=list)  # (phone, text) decoded
    inbox: list[Stored] = field(default_factory=list)
    cms_errors: int = 0  # answer the next n sends with +CMS ERROR: 500
    silent: bool = False  # answer nothing
    commands: list[str] = field(default_factory=list)
    charset: str = "GSM"
    model: str = "quectel"
    scenarios: dict[str, list[str]] = field(default_factory=dict)
    calls: list[dict[str, object]] = field(default_factory=list)  # phone, scenario, spoken, key
    _call: dict[str, object] | None = None
    _wlock: threading.Lock = field(default_factory=threading.Lock)
    _slave: int = -1
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _next_index: int = 1

    @classmethod
    def open(cls, model: str = "quectel") -> GsmModemStub:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        stub = cls(master, os.ttyname(slave), model=model)
        stub._slave = slave  # kept open so the terminal stays while the host reopens it
        stub._thread = threading.Thread(target=stub._run, name="gsm-stub", daemon=True)
        stub._thread.start()
        return stub

    def _write(self, text: str) -> None:
        with self._wlock, contextlib.suppress(OSError):
            os.write(self.master, text.encode())

    def _later(self, delay_s: float, text: str, call: dict[str, object] | None = None) -> None:
        """An unsolicited line after a while — unless the call it belongs to has ended."""

        def fire() -> None:
            if call is not None and (self._call is not call or self._stop.is_set()):
                return
            if not self._stop.is_set():
                self._write(text)

        t = threading.Timer(delay_s, fire)
        t.daemon = True
        t.start()

    # --- voice ------------------------------------------------------------------------

    def _dial(self, phone: str) -> None:
        left = self.scenarios.get(phone, [])
        scenario = left.pop(0) if left else "no_answer"
        call: dict[str, object] = {
            "phone": phone,
            "scenario": scenario,
            "state": 3,  # +CLCC stat: 3 alerting (the far end rings), 0 active
            "spoken": [],
            "key": None,
        }
        self.calls.append(call)
        self._call = call
        self._write("\r\nOK\r\n")
        if scenario == "busy":
            call["state"] = None
            self._later(0.3, "\r\nBUSY\r\n")
            self._call = None
        elif scenario != "no_answer":

            def answer() -> None:
                if self._call is call:
                    call["state"] = 0

            t = threading.Timer(0.4, answer)
            t.daemon = True
            t.start()

    def _speak(self, hextext: str) -> None:
        call = self._call
        if call is None or call["state"] != 0:
            self._write("\r\n+CME ERROR: 3\r\n")  # operation not allowed: no call
            return
        spoken = call["spoken"]
        assert isinstance(spoken, list)
        spoken.append(from_ucs2(hextext))
        self._write("\r\nOK\r\n")
        done = "+QTTS: 0" if self.model == "quectel" else "+CTTS: 0"
        scenario = str(call["scenario"])
        key = "1" if scenario == "confirm" else scenario.partition(":")[2]
        if key and len(spoken) == 1:
            call["key"] = key
            urc = f"+QTONEDET: {ord(key)}" if self.model == "quectel" else f"+RXDTMF: {key}"
            self._later(0.2, f"\r\n{urc}\r\n", call)
        if scenario == "hangup" and len(spoken) == 1:
            call["state"] = None
            self._later(0.2, "\r\nNO CARRIER\r\n", call)
        self._later(0.4, f"\r\n{done}\r\n", call)

    def _voice(self, cmd: str) -> bool:
        """Voice commands; False: not one."""
        up = cmd.upper()
        tts = {"quectel": r'AT\+QTTS=1,"([0-9A-F]*)"', "simcom": r'AT\+CTTS=1,"([0-9A-F]*)"'}
        dtmf = {"quectel": "AT+QTONEDET=1", "simcom": "AT+DDET=1"}
        if m := re.fullmatch(r"ATD([+0-9]+);", up):
            self._dial(m.group(1))
        elif up == "AT+CLCC":
            call = self._call
            line = ""
            if call is not None and call["state"] is not None:
                line = f'+CLCC: 1,0,{call["state"]},0,0,"{call["phone"]}",129\r\n'
            self._write(f"\r\n{line}\r\nOK\r\n" if line else "\r\nOK\r\n")
        elif up == "ATH":
            if self._call is not None:
                self._call["ended"] = "host"
            self._call = None
            self._write("\r\nOK\r\n")
        elif up == dtmf[self.model]:
            self._write("\r\nOK\r\n")
        elif m := re.fullmatch(tts[self.model], up):
            self._speak(m.group(1))
        else:
            return False
        return True

    def receive(self, sender: str, text: str) -> None:
        with self._lock:
            idx = self._next_index
            self._next_index += 1
            self.inbox.append(Stored(idx, sender, text))
        if not self.silent:
            self._write(f'\r\n+CMTI: "SM",{idx}\r\n')

    def unplug(self) -> None:
        """The modem is pulled out: the host's reads fail, nothing answers again."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.close(self.master)
        with contextlib.suppress(OSError):
            os.close(self._slave)

    def close(self) -> None:
        self.unplug()
        if self._thread is not None:
            self._thread.join(5)

    def _s(self, text: str) -> str:
        """A string parameter in the current character set."""
        return ucs2(text) if self.charset == "UCS2" else text

    def _param(self, text: str) -> str:
        return from_ucs2(text) if self.charset == "UCS2" else text

    def _run(self) -> None:
        buf = b""
        pending_phone: str | None = None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                if pending_phone is not None:
                    if b"\x1a" not in buf:
                        break
                    body, _, buf = buf.partition(b"\x1a")
                    self._sms(pending_phone, body.decode(errors="replace"))
                    pending_phone = None
                    continue
                if b"\r" not in buf:
                    break
                line, _, buf = buf.partition(b"\r")
                cmd = line.decode(errors="replace").strip()
                if not cmd:
                    continue
                self.commands.append(cmd)
                if self.silent:
                    continue
                pending_phone = self._command(cmd)

    def _sms(self, phone: str, body: str) -> None:
        if self.cms_errors > 0:
            self.cms_errors -= 1
            self._write("\r\n+CMS ERROR: 500\r\n")
            return
        text = self._param(body)
        self.sent.append((phone, text))
        self._write(f"\r\n+CMGS: {len(self.sent)}\r\n\r\nOK\r\n")

    def _command(self, cmd: str) -> str | None:
        up = cmd.upper()
        if self._voice(cmd):
            return None
        if up in ("AT", "ATE0", "AT+CMGF=1") or up.startswith("AT+CNMI"):
            self._write("\r\nOK\r\n")
        elif m := re.fullmatch(r'AT\+CSCS="(\w+)"', cmd, re.I):
            self.charset = m.group(1).upper()
            self._write("\r\nOK\r\n")
        elif m := re.fullmatch(r'AT\+CMGS="([^"]*)"', cmd, re.I):
            self._write("\r\n> ")
            return self._param(m.group(1))
        elif m := re.fullmatch(r'AT\+CMGL="([^"]*)"', cmd, re.I):
            status = self._param(m.group(1))
            out = []
            with self._lock:
                for s in self.inbox:
                    if status == "ALL" or (status == "REC UNREAD" and not s.read):
                        stat = "REC READ" if s.read else "REC UNREAD"
                        out.append(
                            f'+CMGL: {s.index},"{self._s(stat)}","{self._s(s.sender)}",,'
                            f'"26/11/29,08:00:00+32"\r\n{self._s(s.text)}\r\n'
                        )
                        s.read = True
            self._write("\r\n" + "".join(out) + "\r\nOK\r\n")
        elif m := re.fullmatch(r"AT\+CMGR=(\d+)", cmd, re.I):
            with self._lock:
                hit = next((s for s in self.inbox if s.index == int(m.group(1))), None)
                if hit is not None:
                    stat = "REC READ" if hit.read else "REC UNREAD"
                    hit.read = True
            if hit is None:
                self._write("\r\n+CMS ERROR: 321\r\n")  # invalid memory index
            else:
                self._write(
                    f'\r\n+CMGR: "{self._s(stat)}","{self._s(hit.sender)}",,'
                    f'"26/11/29,08:00:00+32"\r\n{self._s(hit.text)}\r\n\r\nOK\r\n'
                )
        elif m := re.fullmatch(r"AT\+CMGD=(\d+)", cmd, re.I):
            with self._lock:
                self.inbox = [s for s in self.inbox if s.index != int(m.group(1))]
            self._write("\r\nOK\r\n")
        else:
            self._write("\r\nERROR\r\n")
        return None
