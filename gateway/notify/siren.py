"""Siren / warning broadcast (预警广播) channel: a command to an actuator over MQTT and
the device's confirmation. No confirmation within `confirm_s` is a failed attempt: the
dispatcher retries with backoff and reports the delivery failed after the last one.

    command  stations/<station>/<device>/command  {"id": "d17", "action": "sound", ...}
    confirm  stations/<station>/<device>/confirm  {"id": "d17", "ok": true}
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from gateway.notify.base import Delivery, DeliveryError
from gateway.notify.mqtt_link import MqttLink


class SirenChannel:
    name = "siren"

    def __init__(self, link: MqttLink, station: str, confirm_s: dict[str, float]) -> None:
        self.link = link
        self.station = station
        self.confirm_s = confirm_s  # device -> seconds
        self._waiting: dict[str, asyncio.Future[dict[str, object]]] = {}
        link.subscribe(f"stations/{station}/+/confirm", self._confirm)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, d: Delivery) -> None:
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
            await self.link.publish(
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

    def _confirm(self, _topic: str, payload: bytes) -> None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            data = json.loads(payload)
            fut = self._waiting.get(str(data.get("id")))
            if fut is not None and not fut.done():
                fut.set_result(data)
