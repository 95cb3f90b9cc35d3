"""One paho client for the outgoing side of the loop: alerts, siren commands, and the
acknowledgements and siren confirmations that come back. Separate from the telemetry
source, whose acknowledgements wait for commits; this one never holds up readings."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import Broker
from gateway.notify.base import DeliveryError

log = logging.getLogger("stationgw.notify.mqtt")

Handler = Callable[[str, bytes], None]  # (topic, payload), called on the event loop


class MqttLink:
    def __init__(self, settings: Broker, client_suffix: str = "notify") -> None:
        self.settings = settings
        self.handlers: list[tuple[str, Handler]] = []
        self.connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        cid = f"{settings.client_id}-{client_suffix}-{uuid.uuid4().hex[:6]}"[:64]
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid)
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def subscribe(self, pattern: str, handler: Handler) -> None:
        self.handlers.append((pattern, handler))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    async def publish(self, topic: str, payload: bytes, timeout_s: float = 5.0) -> None:
        if not self.connected:
            raise DeliveryError(f"broker {self.settings.host}:{self.settings.port} not connected")
        info = self._client.publish(topic, payload, qos=1)
        try:
            await asyncio.to_thread(info.wait_for_publish, timeout_s)
        except (RuntimeError, ValueError) as e:
            raise DeliveryError(f"publish to {topic} failed: {e}") from e
        if not info.is_published():
            raise DeliveryError(f"publish to {topic}: no PUBACK within {timeout_s} s")

    # --- paho's thread ---------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            return
        self.connected = True
        for pattern, _ in self.handlers:
            client.subscribe(pattern, qos=1)

    def _on_disconnect(self, *_args: object) -> None:
        self.connected = False

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        loop = self._loop
        if loop is None:
            return
        for pattern, handler in self.handlers:
            if mqtt.topic_matches_sub(pattern, msg.topic):
                loop.call_soon_threadsafe(handler, msg.topic, bytes(msg.payload))
