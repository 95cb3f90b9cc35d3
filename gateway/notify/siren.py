"""Siren / warning broadcast (预警广播) channel: a command to an actuator over MQTT (or
a serial line, `siren_serial`) and the device's confirmation. No confirmation within
`confirm_s` is a failed attempt: the dispatcher retries with backoff and reports the
delivery failed after the last one.

    command  stations/<station>/<device>/command  {"id": "d17", "action": "sound", ...}
    confirm  stations/<station>/<device>/confirm  {"id": "d17", "ok": true}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from gateway.notify.base import Delivery, DeliveryError
from gateway.notify.mqtt_link import MqttLink
from gateway.notify.siren_serial import SerialSirens


class SirenChannel:
    name = "siren"

    def __init__(
        self,
        link: MqttLink | None,
        station: str,
        confirm_s: dict[str, float],
        serial: SerialSirens | None = None,
    ) -> None:
        self.link = link
        self.station = station
        self.confirm_s = confirm_s  # device -> seconds
        self.serial = serial  # sirens on serial lines, by device
        self._waiting: dict[str, asyncio.Future[dict[str, object]]] = {}
        if link is not None:
            link.subscribe(f"stations/{station}/+/confirm", self._confirm)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self.serial is not None:
            await self.serial.stop()

    async def send(self, d: Delivery) -> None:
        if self.serial is not None and d.target in self.serial:
            await self.serial.send(d)
            return
        if self.link is None:
            raise DeliveryError(f"siren {d.target}: no MQTT link")
        await self._send_mqtt(self.link, d)

    async def _send_mqtt(self, link: MqttLink, d: Delivery) -> None:
        attempt = f"d{d.id}"
        fut: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._waiting[attempt] = fut
        cmd = {
            "id": attempt,
            "action": "sound",
            "level": d.body.get("level"),
            "ticket": d.ticket_id,
            "text": d.body.get("text"),
        }
        try:
            await link.publish(
                f"stations/{self.station}/{d.target}/command",
                json.dumps(cmd, ensure_ascii=False).encode(),
            )
            wait = self.confirm_s.get(d.target, 5.0)
            try:
                answer = await asyncio.wait_for(fut, wait)
            except TimeoutError:
                raise DeliveryError(f"siren {d.target}: no confirmation within {wait} s") from None
            if answer.get("ok") is False:
                raise DeliveryError(f"siren {d.target} refused: {answer.get('error')}")
        finally:
            self._waiting.pop(attempt, None)

    def _confirm(self, _topic: str, payload: bytes, done: Callable[[], None]) -> None:
        done()  # a confirmation matters only to an attempt waiting for it now
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            data = json.loads(payload)
            fut = self._waiting.get(str(data.get("id")))
            if fut is not None and not fut.done():
                fut.set_result(data)
