"""GSM modem AT codec (pure): UCS2 text, and the listings of received messages.

With `AT+CSCS="UCS2"` every string parameter — the phone number of `AT+CMGS`, the status
of `AT+CMGL`, the sender in a `+CMGR`/`+CMGL` header — and every message body is UCS2:
the UTF-16 big-endian code units written as hexadecimal, four digits per unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def ucs2(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def from_ucs2(hextext: str) -> str:
    """Decode UCS2 hex; text that is not UCS2 hex (a modem in GSM mode) is returned as is."""
    h = hextext.strip()
    if len(h) % 4 or not re.fullmatch(r"[0-9A-Fa-f]*", h):
        return hextext
    try:
        return bytes.fromhex(h).decode("utf-16-be")
    except UnicodeDecodeError:
        return hextext


@dataclass(frozen=True, slots=True)
class Sms:
    index: int
    sender: str
    text: str


_HEADER = re.compile(r'^\+CMGL:\s*(\d+),"([^"]*)","([^"]*)"')


def parse_cmgl(lines: list[str]) -> list[Sms]:
    """Messages of an `AT+CMGL` answer: a `+CMGL:` header line, then the body line."""
    out: list[Sms] = []
    i = 0
    while i < len(lines):
        m = _HEADER.match(lines[i])
        if m and i + 1 < len(lines):
            out.append(Sms(int(m.group(1)), from_ucs2(m.group(3)), from_ucs2(lines[i + 1])))
            i += 2
            continue
        i += 1
    return out


_CMGR = re.compile(r'^\+CMGR:\s*"([^"]*)","([^"]*)"')
_CMTI = re.compile(r'^\+CMTI:\s*"[^"]*",\s*(\d+)')


def parse_cmgr(index: int, lines: list[str]) -> Sms | None:
    """The message of an `AT+CMGR=<index>` answer: a `+CMGR:` header, then the body."""
    for i, line in enumerate(lines):
        m = _CMGR.match(line)
        if m and i + 1 < len(lines):
            return Sms(index, from_ucs2(m.group(2)), from_ucs2(lines[i + 1]))
    return None


def cmti_index(line: str) -> int | None:
    """The storage index a `+CMTI: "SM",3` notification names."""
    m = _CMTI.match(line)
    return int(m.group(1)) if m else None


def fit(text: str, units: int = 70) -> str:
    """At most one UCS2 message (70 UTF-16 units); longer text is cut with an ellipsis."""
    if len(text.encode("utf-16-be")) // 2 <= units:
        return text
    out = ""
    for ch in text:
        if len((out + ch + "…").encode("utf-16-be")) // 2 > units:
            break
        out += ch
    return out + "…"


_CODE = re.compile(r"(?<!\d)(\d{4,6})(?!\d)")


def find_code(text: str) -> str | None:
    """The ticket short code a reply carries ("收到 0012", "0012已到位"): the first number
    of 4 to 6 digits, so a phone number in the text is not taken for it."""
    m = _CODE.search(text)
    return m.group(1) if m else None
