"""paho-mqtt bridged into asyncio, with acknowledgements sent only after the commit.

aiomqtt acknowledges QoS 1 messages as they arrive, so this uses paho's own client with
`manual_ack=True`. paho's network thread appends each message to a bounded buffer and
wakes the event loop once per burst; the pipeline takes whole bursts as batches and acks
them, in arrival order, after they are stored. A full buffer blocks paho's thread, so TCP
and the broker hold further messages (backpressure) instead of anything being dropped.

After a reconnect the broker redelivers every unacknowledged message of the persistent
session; acks for messages of an earlier connection are not sent (packet ids restart),
their redelivered copies are recognised as duplicates by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway import clock
from gateway.config import Broker
from gateway.errors import DriverError

log = logging.getLogger("stationgw.mqtt")

# The largest message body taken in. A device report is a few hundred bytes; the broker is
# asked (MQTT 5 Maximum Packet Size) not to send anything much larger, and a larger body
# that comes anyway (MQTT 3.1.1) is cut to its first KEEP_OVERSIZED bytes at once and goes
# to quarantine: it never reaches a JSON parser and is not held in memory.
MAX_PAYLOAD = 256 * 1024
KEEP_OVERSIZED = 1024


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    received_ms: int
    session: int  # which connection delivered it; acks go only to that one
    oversized: int = 0  # the body's size when over MAX_PAYLOAD (payload: its first KiB)


class MqttSource:
    def __init__(
        self,
        settings: Broker,
        subscriptions: list[str],
        *,
        capacity: int,
        availability_topic: str | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self.capacity = capacity
        self.availability_topic = availability_topic
        self.on_connection = on_connection
        self.connected = False
        self.acks_sent = 0
        self._session = 0
        self._buffer: deque[Message] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self.up = asyncio.Event()  # set while connected (event loop side)
        v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            tls = settings.tls
            try:
                self._client.tls_set(
                    ca_certs=str(tls.ca_file),
                    certfile=str(tls.cert_file) if tls.cert_file else None,
                    keyfile=str(tls.key_file) if tls.key_file else None,
                )
            except (OSError, ssl.SSLError) as e:
                raise DriverError(f"mqtt TLS files: {e}") from e
            self._client.tls_insecure_set(tls.insecure)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        if availability_topic:
            self._client.will_set(availability_topic, b"offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # --- lifecycle (event loop side) ------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        props: Properties | None = None
        kwargs: dict[str, object] = {}
        if s.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            props.MaximumPacketSize = MAX_PAYLOAD + 65536  # room for topic and properties
            kwargs["clean_start"] = False
        try:
            self._client.connect_async(
                s.host,
                s.port,
                # paho closes a connection after two silent intervals (a PINGREQ, then no
                # answer): half the configured keepalive notices a dead or frozen broker
                # within keepalive_s (+ paho's 1 s loop), inside the 1.5 x the spec allows
                keepalive=max(2, s.keepalive_s // 2),
                properties=props,
                **kwargs,  # type: ignore[arg-type]
            )
        except (OSError, ValueError) as e:
            raise DriverError(f"mqtt {s.host}:{s.port}: {e}") from e
        self._client.loop_start()

    async def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self.connected and self.availability_topic:
            info = self._client.publish(self.availability_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                await asyncio.to_thread(info.wait_for_publish, 2.0)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # --- consuming (event loop side) --------------------------------------------------

    def depth(self) -> int:
        return len(self._buffer)

    async def batch(self, max_items: int) -> list[Message]:
        """Wait for at least one message; return up to max_items in arrival order."""
        while True:
            with self._cond:
                if self._buffer:
                    n = min(max_items, len(self._buffer))
                    out = [self._buffer.popleft() for _ in range(n)]
                    if not self._buffer:
                        self._ready.clear()
                    self._cond.notify_all()
                    return out
                self._ready.clear()
            await self._ready.wait()

    def take(self, max_items: int) -> list[Message]:
        """Up to max_items of what is buffered now, without waiting."""
        with self._cond:
            n = min(max_items, len(self._buffer))
            out = [self._buffer.popleft() for _ in range(n)]
            if not self._buffer:
                self._ready.clear()
            self._cond.notify_all()
            return out

    def ack(self, messages: list[Message]) -> int:
        """Acknowledge stored messages of the current session, in order; return how many."""
        session = self._session
        sent = 0
        for m in messages:
            if m.qos > 0 and m.session == session:
                rc = self._client.ack(m.mid, m.qos)
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    sent += 1
        self.acks_sent += sent
        return sent

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain)

    # --- paho's network thread -------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._cond:
            self._session += 1
            self._buffer.clear()  # their unacked copies are redelivered on this session
        client.subscribe([(t, 1) for t in self.subscriptions])
        if self.availability_topic:
            client.publish(self.availability_topic, b"online", qos=1, retain=True)
        log.info(
            "connected to broker %s:%s (session present: %s)",
            self.settings.host,
            self.settings.port,
            flags.session_present,
        )
        self._set_connected(True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.connected and not self._closing:
            log.warning("broker connection lost (%s); reconnecting", reason)
        self._set_connected(False)

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connection_changed, up)

    def _connection_changed(self, up: bool) -> None:
        if up:
            self.up.set()
        else:
            self.up.clear()
        if self.on_connection is not None:
            self.on_connection(up)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        size = len(msg.payload)
        big = size > MAX_PAYLOAD
        m = Message(
            msg.topic,
            bytes(msg.payload[:KEEP_OVERSIZED] if big else msg.payload),
            msg.qos,
            msg.mid,
            clock.now_ms(),
            self._session,
            size if big else 0,
        )
        with self._cond:
            while len(self._buffer) >= self.capacity and not self._closing:
                self._cond.wait(timeout=1.0)
            if self._closing:
                return  # not acknowledged: the broker keeps it for the next start
            wake = not self._buffer
            self._buffer.append(m)
        if wake and self._loop is not None:
            self._loop.call_soon_threadsafe(self._ready.set)
