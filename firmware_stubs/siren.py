"""A station siren / warning-broadcast actuator over MQTT (for tests and demos).

It listens on `stations/<station>/<device>/command` and, unless told to stay mute,
confirms each command on `stations/<station>/<device>/confirm` with the command's id.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class SirenStub:
    def __init__(self, host: str, port: int, station: str, device: str, *, confirm: bool = True):
        self.station = station
        self.device = device
        self.confirm = confirm
        self.commands: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"siren-{device}-{uuid.uuid4().hex[:6]}"
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_a: object) -> None:
        client.subscribe(f"stations/{self.station}/{self.device}/command", qos=1)

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        cmd = json.loads(msg.payload)
        self.commands.append(cmd)
        if self.confirm:
            answer = {"id": cmd["id"], "ok": True, "device": self.device}
            client.publish(
                f"stations/{self.station}/{self.device}/confirm", json.dumps(answer), qos=1
            )

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
