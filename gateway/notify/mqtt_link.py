"""One paho client for the outgoing side of the loop: alerts, siren commands, and the
acknowledgements and siren confirmations that come back. Separate from the telemetry
source, whose acknowledgements wait for commits; this one never holds up readings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.link.broker import Broker
from gateway.notify.base import DeliveryError

log = logging.getLogger("stationgw.notify.mqtt")

# (topic, payload, done), called on the event loop; `done()` acknowledges the message to
# the broker — call it once the message is dealt with (stored), so none is lost
Handler = Callable[[str, bytes, Callable[[], None]], None]


class MqttLink:
    def __init__(self, settings: Broker, client_suffix: str = "notify") -> None:
        self.settings = settings
        self.handlers: list[tuple[str, Handler]] = []
        self.connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session = 0
        # a stable id and a persistent session: acknowledgements a handheld sends while the
        # gateway is down wait at the broker; each is PUBACKed only once it is stored
        cid = f"{settings.client_id}-{client_suffix}"[:64]
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cid,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_socket_open = _no_delay

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
        self._session += 1
        for pattern, _ in self.handlers:
            client.subscribe(pattern, qos=1)

    def _on_disconnect(self, *_args: object) -> None:
        self.connected = False

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        loop = self._loop
        session, mid, qos = self._session, msg.mid, msg.qos

        def done() -> None:
            if qos > 0 and session == self._session:  # packet ids restart with a session
                self._client.ack(mid, qos)

        handlers = [h for p, h in self.handlers if mqtt.topic_matches_sub(p, msg.topic)]
        if loop is None or not handlers:
            done()
            return
        for handler in handlers:
            loop.call_soon_threadsafe(handler, msg.topic, bytes(msg.payload), done)


def _no_delay(_c: mqtt.Client, _u: object, sock: object) -> None:
    """An alert is one small packet: Nagle's algorithm must not hold it back."""
    if isinstance(sock, socket.socket):  # TLS sockets are socket.socket too
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
