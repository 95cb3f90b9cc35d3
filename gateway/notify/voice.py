"""Voice calls (电话叫应) through the station's 4G module, the modem of the SMS channel:
one AT session, owned by the SMS channel's one modem thread, so a call and an SMS never
interleave their commands (an SMS waits for a call in progress, and the other way round).

A call: DTMF detection on (Quectel `AT+QTONEDET=1`, SIMCom `AT+DDET=1`), `ATD<number>;`,
`AT+CLCC` every half second until the call is active (stat 0) or the network says `BUSY`,
`NO ANSWER` or `NO CARRIER`, or `ring_s` passes; then the warning is spoken `repeat`
times with the module's text-to-speech (Quectel `AT+QTTS=1,"<UCS2>"`, ends with
`+QTTS: 0`; SIMCom `AT+CTTS=1,"<UCS2>"`, ends with `+CTTS: 0`), and a key press is
awaited (Quectel `+QTONEDET: <ASCII code>`, SIMCom `+RXDTMF: <key>` / `+DTMF: <key>`),
also while it speaks; `ATH`. Key 1 = confirmed (应答): acknowledged like an SMS reply.
Any other key, none, or a hang-up = answered without confirming. A call that is not
confirmed fails the attempt, and the policy's redial comes `redial_every` later.

Text-to-speech mode 1 is "the text is UCS2" on SIMCom's `AT+CTTS` (its AT manual: 1 UCS2,
2 ASCII/GBK) and on Quectel's LTE modules (EC200U, EC800M drivers in public code send
`AT+QTTS=1,…`); Quectel's older GSM M-series take GBK text with mode 2 and are not
supported. Check the command against the module's own manual before a station goes live.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.loop import VoiceSection
from gateway.notify.base import AckIn, Delivery, DeliveryError, OnAck
from gateway.notify.gsm import ucs2
from gateway.notify.sms import Modem, SmsChannel

log = logging.getLogger("stationgw.notify.voice")


@dataclass(frozen=True, slots=True)
class Dialect:
    dtmf_on: str
    tts: str  # with {hex}
    tts_done: str
    key: re.Pattern[str]
    ascii_code: bool  # the key comes as its ASCII code (Quectel: 49 = "1")


DIALECTS = {
    "quectel": Dialect(
        "AT+QTONEDET=1", 'AT+QTTS=1,"{hex}"', "+QTTS: 0", re.compile(r"^\+QTONEDET:\s*(\d+)"), True
    ),
    "simcom": Dialect(
        "AT+DDET=1",
        'AT+CTTS=1,"{hex}"',
        "+CTTS: 0",
        re.compile(r"^\+(?:RX)?DTMF:\s*([0-9A-D*#])"),
        False,
    ),
}
_ENDS = {"BUSY": "busy", "NO ANSWER": "no_answer", "NO CARRIER": "no_answer"}
_CLCC = re.compile(r"^\+CLCC:\s*\d+,\d+,(\d+),")


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: str  # confirmed, answered, busy, no_answer, failed, stopped
    detail: str
    answered_after_s: float | None = None


class _Stopped(Exception):
    """The call was stopped (the warning lifted or lowered, the gateway stopping)."""


def call(
    modem: Modem,
    model: str,
    phone: str,
    text: str,
    v: VoiceSection,
    stop: Callable[[], bool] = lambda: False,
) -> CallResult:
    """One call, blocking, on the modem's thread; never raises for the far end's
    behaviour (busy, no answer), only DeliveryError for the modem's (no answer, ERROR)."""
    d = DIALECTS[model]
    if stop():  # cancelled while it waited for the modem (answered meanwhile, lifted)
        return CallResult("stopped", "not needed any more: not dialled")
    modem.command(d.dtmf_on)
    t0 = time.monotonic()
    try:
        modem.command(f"ATD{phone};", timeout_s=15)
    except DeliveryError as e:
        return CallResult("failed", f"dial refused: {e}")
    try:
        ended = _wait_active(modem, t0 + v.ring_s, stop)
        if ended is not None:
            _hang_up(modem)
            return CallResult(ended, "")
        answered = round(time.monotonic() - t0, 1)
        key = _speak_and_listen(modem, d, text, v, stop)
    except _Stopped:
        _hang_up(modem)
        return CallResult("stopped", "warning lifted or lowered: hung up")
    _hang_up(modem)
    if key == "1":
        return CallResult("confirmed", "key 1", answered)
    if key == "hangup":
        return CallResult("answered", "hung up without a key", answered)
    return CallResult("answered", f"key {key}" if key else "no key", answered)


def _lines(modem: Modem, until: float) -> list[str]:
    """Unsolicited lines that arrive before `until` (+CMTI kept for the SMS inbox)."""
    out: list[str] = []
    while True:
        line = modem._line(until)
        if line is None:
            return out
        if not line:
            continue
        if line.startswith("+CMTI:"):
            modem.urcs.append(line)
            continue
        out.append(line)


def _wait_active(modem: Modem, deadline: float, stop: Callable[[], bool]) -> str | None:
    """None when the call is answered; else how it ended (busy, no_answer)."""
    while time.monotonic() < deadline:
        if stop():
            raise _Stopped
        lines = modem.command("AT+CLCC")
        lines += _lines(modem, min(deadline, time.monotonic() + 0.5))
        for line in lines:
            if line in _ENDS:
                return _ENDS[line]
            m = _CLCC.match(line)
            if m and m.group(1) == "0":
                return None
    return "no_answer"


def _speak_and_listen(
    modem: Modem, d: Dialect, text: str, v: VoiceSection, stop: Callable[[], bool]
) -> str | None:
    """The key pressed (also while speaking), "hangup", or None."""
    for i in range(v.repeat + 1):
        if i < v.repeat:
            modem.command(d.tts.format(hex=ucs2(text)))
            until = time.monotonic() + v.speech_s
            done = d.tts_done
        else:
            until = time.monotonic() + v.key_wait_s
            done = ""
        while time.monotonic() < until:
            if stop():
                raise _Stopped
            for line in _lines(modem, min(until, time.monotonic() + 0.3)):
                m = d.key.match(line)
                if m:
                    return chr(int(m.group(1))) if d.ascii_code else m.group(1)
                if line == "NO CARRIER":
                    return "hangup"
                if done and line.startswith(done):
                    until = 0.0
    return None


def _hang_up(modem: Modem) -> None:
    try:
        modem.command("ATH")
    except DeliveryError as e:
        log.warning("ATH: %s", e)


class VoiceChannel:
    """Deliveries to `voice` are calls; `send` returns the outcome, and raises
    DeliveryError (the attempt is redialled by the policy) unless key 1 was pressed."""

    name = "voice"

    def __init__(
        self,
        sms: SmsChannel,
        settings: VoiceSection,
        on_ack: OnAck,
        stopped: Callable[[int], bool] = lambda _id: False,
    ) -> None:
        self.sms = sms
        self.settings = settings
        self.on_ack = on_ack
        self.stopped = stopped
        v = settings
        self.timeout_s = v.ring_s + v.repeat * v.speech_s + v.key_wait_s + 30

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, d: Delivery) -> str | None:
        text = str(d.body.get("text") or d.body.get("title") or "")
        loop = asyncio.get_running_loop()
        model = self.sms.settings.modem
        if self.stopped(d.id):
            raise DeliveryError("not needed any more: not dialled", outcome="stopped")
        result: CallResult = await loop.run_in_executor(
            self.sms.thread,
            call,
            self.sms.modem,
            model,
            d.target,
            text,
            self.settings,
            lambda: self.sms.stopping or self.stopped(d.id),
        )
        who = d.body.get("name") or d.target
        after = (
            f" (answered after {result.answered_after_s} s)"
            if result.answered_after_s is not None
            else ""
        )
        log.info("voice call to %s: %s %s%s", who, result.outcome, result.detail, after)
        if result.outcome == "confirmed":
            self.on_ack(AckIn(by=d.target, via="voice", ticket=d.ticket_id, note="按1确认"))
            return "confirmed"
        raise DeliveryError(
            f"{result.outcome}: {result.detail}".rstrip(": "), outcome=result.outcome
        )
