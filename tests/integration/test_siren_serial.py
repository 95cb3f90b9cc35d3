"""Sirens on serial lines (real pseudo-terminals): confirmed, refused, mute, unplugged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firmware_stubs.siren import SerialSirenStub
from gateway.notify.base import Delivery, DeliveryError
from gateway.notify.siren import SirenChannel
from gateway.notify.siren_serial import SerialSirenLine, SerialSirens

pytestmark = pytest.mark.integration


def test_serial_sirens() -> None:
    ok, refusing, mute = (
        SerialSirenStub(),
        SerialSirenStub(refuse="power-fault"),
        SerialSirenStub(confirm=False),
    )
    lines = {
        name: SerialSirenLine(Path(stub.port), 9600, 0.5)
        for name, stub in (("s-ok", ok), ("s-nak", refusing), ("s-mute", mute))
    }
    channel = SirenChannel(None, "test", {}, SerialSirens(lines))

    def delivery(n: int, target: str) -> Delivery:
        return Delivery(n, 1, "siren", target, {"level": "red", "text": "红色预警"})

    async def main() -> None:
        await channel.send(delivery(1, "s-ok"))
        with pytest.raises(DeliveryError, match="siren refused: power-fault"):
            await channel.send(delivery(2, "s-nak"))
        with pytest.raises(DeliveryError, match=r"no confirmation within 0.5 s"):
            await channel.send(delivery(3, "s-mute"))
        with pytest.raises(DeliveryError, match="no MQTT link"):
            await channel.send(delivery(4, "s-elsewhere"))
        ok.close()  # unplugged
        with pytest.raises(DeliveryError, match=r"gone|unavailable|no confirmation"):
            await channel.send(delivery(5, "s-ok"))
        await channel.stop()

    try:
        asyncio.run(main())
    finally:
        for stub in (ok, refusing, mute):
            stub.close()
    assert ok.commands == ["SIREN d1 SOUND red"]
    assert refusing.commands == ["SIREN d2 SOUND red"] and mute.commands == ["SIREN d3 SOUND red"]
