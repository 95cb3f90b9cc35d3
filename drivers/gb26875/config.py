"""GB/T 26875.3 settings: an alarm panel's `transport` table and the `[gb26875]` section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from drivers.link.config import Listen, Model, TransportModel


class Gb26875Transport(TransportModel):
    """A user information transmission device (fire-alarm panel) by its source address."""

    kind: Literal["gb26875"]
    address: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{12}$")]  # 6 bytes, as sent
    reply: bool = True  # confirm (command 3) after the commit


class Gb26875Section(Model):
    """Where alarm panels reach the gateway: a TCP port and/or serial ports."""

    listen: Listen | None = None
    timezone: str = "Asia/Shanghai"
    idle_timeout_s: float = Field(default=600.0, gt=0)
    frame_timeout_s: float = Field(default=5.0, gt=0)
