"""paho-mqtt driven by the asyncio event loop, with acknowledgements sent after the commit.

aiomqtt acknowledges QoS 1 messages as they arrive, so this uses paho's own client with
`manual_ack=True`, in paho's external-loop mode (as aiomqtt drives it): the event loop
watches the socket and calls `loop_read`/`loop_write`/`loop_misc`, so there is no network
thread, no lock and no thread wake-up per message or per acknowledgement.

Reading is gathered: when the socket becomes readable the source waits GATHER_S, then
reads what arrived meanwhile (a backlog in slices of READ_MAX packets). At a trickle
this turns one wake-up per message into one per GATHER_S, and the pipeline commits what
one read gathered as one batch. The buffer is bounded (`capacity`): when it is full the
socket is not read, so TCP and the broker hold further messages (backpressure) instead
of anything being dropped.

After a reconnect the broker redelivers every unacknowledged message of the persistent
session; acks for messages of an earlier connection are not sent (packet ids restart),
their redelivered copies are recognised as duplicates by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from drivers.link.broker import Broker
from gateway.core import clock
from gateway.core.errors import DriverError

log = logging.getLogger("stationgw.mqtt")

# The largest message body taken in. A device report is a few hundred bytes; the broker is
# asked (MQTT 5 Maximum Packet Size) not to send anything much larger, and a larger body
# that comes anyway (MQTT 3.1.1) is cut to its first KEEP_OVERSIZED bytes at once and goes
# to quarantine: it never reaches a JSON parser and is not held in memory.
MAX_PAYLOAD = 256 * 1024
KEEP_OVERSIZED = 1024

# How long a readable socket waits before it is read (see the module docstring): the
# latency a reading gains at a trickle, for fewer wake-ups and commits (BENCHMARKS.md).
GATHER_S = 0.005
# Packets read in one go at most: a backlog is read in slices, so the pipeline commits one
# slice on the writer thread while the next is read, and the event loop stays responsive.
READ_MAX = 200
RECONNECT_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    received_ms: int
    session: int  # which connection delivered it; acks go only to that one
    oversized: int = 0  # the body's size when over MAX_PAYLOAD (payload: its first KiB)
    retain: bool = False  # sent from the broker's retained store (a subscription's start)


class MqttSource:
    def __init__(
        self,
        settings: Broker,
        subscriptions: list[str],
        *,
        capacity: int,
        availability_topic: str | None = None,
        on_connection: Callable[[bool], None] | None = None,
        gather_s: float = GATHER_S,
        fresh_only: frozenset[str] = frozenset(),
    ) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self.fresh_only = fresh_only  # subscriptions that want no retained messages
        self.capacity = capacity
        self.availability_topic = availability_topic
        self.on_connection = on_connection
        self.gather_s = gather_s
        self.connected = False
        self.acks_sent = 0
        self._session = 0
        self._buffer: deque[Message] = deque()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._ready = asyncio.Event()
        self.up = asyncio.Event()  # set while connected (event loop side)
        self._sock: socket.socket | None = None  # the socket the event loop watches
        self._poll = select.poll()  # the same socket, asked whether more has arrived
        self._fd = -1  # its file descriptor (kept: paho may close the socket first)
        self._watching = False  # a reader is registered for it
        self._scheduled = False  # a gathered read is coming
        self._paused = False  # the buffer filled up: the socket is not read
        self._failures = 0  # connection attempts failed in a row (backoff)
        self._runner: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()  # set when the watched socket is closed
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
        self._client.on_socket_open = self._socket_open
        self._client.on_socket_close = self._socket_close
        self._client.on_socket_register_write = self._register_write
        self._client.on_socket_unregister_write = self._unregister_write

    # --- lifecycle (event loop side) ------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
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
                # within keepalive_s (+ the 1 s tick of `_run`), inside the 1.5 x the spec
                # allows
                keepalive=max(2, s.keepalive_s // 2),
                properties=props,
                **kwargs,  # type: ignore[arg-type]
            )
        except (OSError, ValueError) as e:
            raise DriverError(f"mqtt {s.host}:{s.port}: {e}") from e
        self._runner = asyncio.create_task(self._run(), name="mqtt-source")

    async def stop(self) -> None:
        self._closing = True
        if self.connected and self.availability_topic:
            info = self._client.publish(self.availability_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                await asyncio.to_thread(info.wait_for_publish, 2.0)
        self._client.disconnect()  # DISCONNECT goes out through the writer; paho then closes
        if self._sock is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), 2.0)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._client.socket() is not None:  # the broker did not take the DISCONNECT
            self._client.loop_misc()  # keeps paho's state consistent
            with contextlib.suppress(OSError):
                self._client._sock_close()  # paho has no public close

    async def _run(self) -> None:
        """Connect, reconnect with backoff (1 s doubling to 30 s), and tick paho's
        keepalive once a second."""
        s = self.settings
        next_try = 0.0
        while True:
            if self._client.socket() is None and not self._closing:
                now = time.monotonic()
                if now >= next_try:
                    # every attempt counts until a CONNACK accepts it (`_on_connect`): a
                    # refused one closes the socket and backs off like an unreachable broker
                    self._failures += 1
                    delay = min(RECONNECT_MAX_S, 2.0 ** (self._failures - 1))
                    next_try = now + delay
                    try:
                        # DNS, TCP and the TLS handshake block: not on the event loop
                        await asyncio.to_thread(self._client.reconnect)
                    except (OSError, ValueError) as e:
                        next_try = time.monotonic() + delay  # a timeout took its time
                        log.warning(
                            "broker %s:%s unreachable (%s); next try in %.0f s",
                            s.host,
                            s.port,
                            e,
                            delay,
                        )
            else:
                self._client.loop_misc()
            await asyncio.sleep(1.0)

    # --- the socket, watched by the event loop ------------------------------------------

    def _on_loop(self, fn: Callable[[], object]) -> None:
        """Run fn on the event loop: now when called there, else soon (paho calls the
        socket callbacks from `reconnect`, which runs on a worker thread)."""
        if threading.get_ident() == self._loop_thread:
            fn()
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    def _socket_open(self, _c: mqtt.Client, _u: object, sock: object) -> None:
        assert isinstance(sock, socket.socket)  # TLS sockets are socket.socket too

        def watch() -> None:
            self._forget_socket()
            self._sock, self._fd = sock, sock.fileno()
            self._closed.clear()
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
            self._paused = False
            self._arm()

        self._on_loop(watch)

    def _socket_close(self, _c: mqtt.Client, _u: object, sock: object) -> None:
        self._on_loop(self._forget_socket)

    def _forget_socket(self) -> None:
        if self._sock is None or self._loop is None:
            return
        self._sock = None
        if self._watching:
            self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._watching = self._scheduled = False
        self._closed.set()

    def _register_write(self, _c: mqtt.Client, _u: object, sock: object) -> None:
        def watch() -> None:
            if self._loop is not None and self._sock is not None and sock is self._sock:
                self._loop.add_writer(self._fd, self._writable)

        self._on_loop(watch)

    def _unregister_write(self, _c: mqtt.Client, _u: object, sock: object) -> None:
        def unwatch() -> None:
            if self._loop is not None and self._sock is not None and sock is self._sock:
                self._loop.remove_writer(self._fd)

        self._on_loop(unwatch)

    def _writable(self) -> None:
        self._client.loop_write()

    def _arm(self) -> None:
        """Watch the socket for the next packet, unless watching, reading soon or paused."""
        if self._sock is None or self._watching or self._scheduled or self._paused:
            return
        assert self._loop is not None
        self._watching = True
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None or self._loop is None:
            return
        if not self.gather_s:
            self._read(sock)
            return
        self._loop.remove_reader(self._fd)  # nothing more to hear until the gathered read
        self._watching = False
        self._scheduled = True
        self._loop.call_later(self.gather_s, self._read, sock)

    def _read(self, sock: socket.socket) -> None:
        """Read the packets that have arrived: at most READ_MAX, and no more than the
        buffer holds; a longer backlog is read on in the next slice."""
        self._scheduled = False
        if sock is not self._sock or self._loop is None:
            return  # the connection was closed meanwhile
        client = self._client
        had = len(self._buffer)
        more = False
        for _ in range(READ_MAX):
            if len(self._buffer) >= self.capacity:
                self._paused = True  # full: TCP and the broker hold the rest
                if self._watching:
                    self._loop.remove_reader(self._fd)
                    self._watching = False
                break
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is not sock:
                break  # the connection broke: paho closed it and said so (on_disconnect)
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
            if not pending and not self._poll.poll(0):
                break
        else:
            more = True  # a backlog: the next slice after whatever else is due
        if len(self._buffer) > had:
            self._ready.set()
        if more and not self._watching:
            self._scheduled = True
            self._loop.call_soon(self._read, sock)
        else:
            self._arm()

    def _resume(self) -> None:
        if self._paused and len(self._buffer) < self.capacity:
            self._paused = False
            if self._sock is not None and self._loop is not None and not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._read, self._sock)  # it may hold data already

    # --- consuming (event loop side) --------------------------------------------------

    def depth(self) -> int:
        return len(self._buffer)

    async def batch(self, max_items: int) -> list[Message]:
        """Wait for at least one message; return up to max_items in arrival order."""
        while not self._buffer:
            self._ready.clear()
            await self._ready.wait()
        return self.take(max_items)

    async def more(self, max_items: int, timeout_s: float) -> list[Message]:
        """Wait up to `timeout_s` for `max_items` to be buffered; return what is buffered
        then, up to `max_items` (a group commit gathering a small batch)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):  # one timer, no task per arrival
                while len(self._buffer) < max_items:
                    self._ready.clear()
                    await self._ready.wait()
        return self.take(max_items)

    def take(self, max_items: int) -> list[Message]:
        """Up to max_items of what is buffered now, without waiting."""
        buf = self._buffer
        out = [buf.popleft() for _ in range(min(max_items, len(buf)))]
        if not buf:
            self._ready.clear()
        self._resume()
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

    # --- paho's callbacks (on the event loop, from loop_read) -----------------------

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
        self._session += 1
        self._failures = 0
        self._buffer.clear()  # their unacked copies are redelivered on this session
        if self.settings.protocol == "5":
            # MQTT 5 retain handling 2: a retained report is an old one, not a new reading;
            # the broker sends it on none of these subscriptions (3.1.1: the pipeline
            # drops telemetry flagged retained)
            client.subscribe(
                [
                    (t, SubscribeOptions(qos=1, retainHandling=2 if t in self.fresh_only else 0))
                    for t in self.subscriptions
                ]
            )
        else:
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
        self._session += 1  # no ack of this connection's messages may reach the next one
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
            bool(msg.retain),
        )
        if self._closing:
            return  # not acknowledged: the broker keeps it for the next start
        self._buffer.append(m)
