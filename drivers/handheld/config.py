"""Handheld recorder settings: its `transport` table (records over MQTT or from a dock)."""

from __future__ import annotations

from typing import Literal

from drivers.link.config import TransportModel


class HandheldTransport(TransportModel):
    """A handheld recorder: records over MQTT (`stations/<station>/<device>/patrol`) or
    from a dock on a serial port."""

    kind: Literal["handheld"]
