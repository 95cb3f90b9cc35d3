"""Station-file model of a 4G DTU (`[[dtu]]`): where it connects, how it registers.

    [[dtu]]
    id = "dtu-xiaxi"
    name = "下溪村4G DTU"
    listen = { port = 15700 }           # several DTUs may share one port
    registration = "860000000000001"    # or "hex:FE0102…"; see registration_match
    registration_match = "exact"        # "exact", "prefix" or "pattern" (a regex)
    heartbeat = "HB"                    # its heartbeat packet, dropped between frames
    idle_timeout_s = 120                # nothing for that long: closed
    protocol = "modbus_rtu"             # what the serial side speaks: "modbus_rtu" or "sl651"

Devices behind a Modbus DTU are `modbus_rtu` devices naming `dtu = "<id>"` instead of a
serial `port`; SL651 stations behind an SL651 DTU are plain `sl651` devices (their
frames carry their address).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from drivers.link.config import Listen, Model, Name


def packet(text: str) -> bytes:
    """A packet as written in the station file: text, or `hex:` and hex digits."""
    if text.startswith("hex:"):
        return bytes.fromhex(text[4:])
    return text.encode("utf-8")


def _packet_ok(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        data = packet(v)
    except ValueError:
        raise ValueError(f"{v!r}: after hex: only pairs of hex digits") from None
    if not data:
        raise ValueError("empty packet")
    if len(data) > 256:
        raise ValueError("longer than 256 bytes")
    return v


DtuListen = Listen  # a DTU port is a plain listener


class DtuSection(Model):
    id: Name
    name: str = Field(min_length=1)
    listen: DtuListen
    registration: str = Field(min_length=1)
    registration_match: Literal["exact", "prefix", "pattern"] = "exact"
    heartbeat: str | None = None
    protocol: Literal["modbus_rtu", "sl651"]
    idle_timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    register_timeout_s: float = Field(default=10.0, gt=0, le=600)  # connected, never registered
    frame_timeout_s: float = Field(default=5.0, gt=0)  # a partial frame dropped after silence
    # a second connection presenting the registration of a connection that sent bytes
    # within this window is a second DTU and refused; an older holder is presumed dead
    # (a half-open socket after the 4G link dropped) and the newcomer takes over
    duplicate_window_s: float = Field(default=10.0, ge=0, le=3600)

    _check_heartbeat = field_validator("heartbeat")(_packet_ok)

    @field_validator("registration")
    @classmethod
    def _registration_ok(cls, v: str) -> str:
        _packet_ok(v)
        return v

    def pattern(self) -> re.Pattern[bytes] | None:
        if self.registration_match != "pattern":
            return None
        return re.compile(packet(self.registration), re.DOTALL)


def dtu_problems(dtus: list[DtuSection], modbus_dtus: list[tuple[int, str]]) -> list[str]:
    """Cross-checks: unique ids, regexes that compile, one registration per port, and the
    DTU named by each Modbus device (index, dtu id) exists and speaks Modbus RTU."""
    out: list[str] = []
    ids: dict[str, DtuSection] = {}
    seen: dict[tuple[int, str, bytes], str] = {}
    for i, d in enumerate(dtus):
        if d.id in ids:
            out.append(f"dtu[{i}].id: duplicate id {d.id!r}")
        ids.setdefault(d.id, d)
        if d.registration_match == "pattern":
            try:
                d.pattern()
            except re.error as e:
                out.append(f"dtu[{i}].registration: not a regular expression: {e}")
        key = (d.listen.port, d.registration_match, packet(d.registration))
        if key in seen:
            out.append(
                f"dtu[{i}].registration: the same as DTU {seen[key]!r} on port {d.listen.port}"
            )
        seen[key] = d.id
        if d.heartbeat is not None and packet(d.heartbeat) == packet(d.registration):
            out.append(f"dtu[{i}].heartbeat: the same as the registration")
    for index, dtu in modbus_dtus:
        where = f"devices[{index}].transport.dtu"
        if dtu not in ids:
            out.append(f"{where}: unknown DTU {dtu!r} (no [[dtu]] with that id)")
        elif ids[dtu].protocol != "modbus_rtu":
            out.append(f"{where}: DTU {dtu!r} carries {ids[dtu].protocol}, not modbus_rtu")
    return out
