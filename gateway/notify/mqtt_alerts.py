"""MQTT channel: alerts as JSON on the alert topic for other systems and handhelds;
acknowledgements come back on the ack topic:
`{"code": "0012", "by": "li", "note": "已到现场"}` or `{"ticket": 12, "by": "li"}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from gateway.notify.base import AckIn, Delivery, OnAck
from gateway.notify.mqtt_link import MqttLink

log = logging.getLogger("stationgw.notify.mqtt")


class MqttAlertChannel:
    name = "mqtt"

    def __init__(self, link: MqttLink, alert_topic: str, ack_topic: str, on_ack: OnAck) -> None:
        self.link = link
        self.alert_topic = alert_topic
        self.ack_topic = ack_topic
        self.on_ack = on_ack
        link.subscribe(ack_topic, self._ack)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, d: Delivery) -> None:
        body = {**d.body, "delivery": d.id}
        await self.link.publish(self.alert_topic, json.dumps(body, ensure_ascii=False).encode())

    def _ack(self, topic: str, payload: bytes, done: Callable[[], None]) -> None:
        try:
            data = json.loads(payload)
            by = str(data["by"])
            ticket = int(data["ticket"]) if "ticket" in data else None
            code = str(data["code"]) if "code" in data else None
            note = str(data["note"]) if data.get("note") is not None else None
        except (ValueError, KeyError, TypeError) as e:
            log.warning("acknowledgement on %s not understood (%s): %r", topic, e, payload[:200])
            done()
            return
        if ticket is None and code is None:
            log.warning("acknowledgement on %s names no ticket or code", topic)
            done()
            return
        self.on_ack(AckIn(by=by, via="mqtt", ticket=ticket, code=code, note=note, done=done))
