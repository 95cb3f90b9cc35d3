"""The MQTT uplink to the county broker: outbox rows as QoS 1 messages, in order.

paho-mqtt, not aiomqtt: aiomqtt's `publish` waits for each PUBACK before it returns, so
a window of messages in flight needs a task per message; paho publishes from the event
loop without waiting and reports each PUBACK (`on_publish`, by packet id) from its own
network thread, which also does the socket IO off the event loop. The gateway's own
MQTT source uses paho for the same kind of reason (manual acks).

One paho client per connection: when a connection drops, its unconfirmed messages are
forgotten with it and the next connection sends again from the confirmed cursor, in seq
order. Repeats are possible (a PUBACK lost with the connection); every message carries
its seq range so the county drops them. The cursor moves when the PUBACKs of every
message up to a seq have arrived.

Topics (`<p>` = `county/<station>`) and payloads (JSON, UTF-8):
- `<p>/readings`: {"station", "seq", "last", "readings": [[device, metric, ts, value,
  flags], …]}; the i-th reading has seq `seq + i`, and `last` is the last one's.
- `<p>/tickets`: {"station", "seq", "last", "ticket": {…}, "event": {…}}: one ticket event
  with the ticket as it stood after it.
- `<p>/health`: {"station", "seq", "last", "health": {…}}: a device's health or
  online state changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from gateway.config.uplinks import MqttUplinkSection
from gateway.uplinks.feed import Feed
from gateway.uplinks.outbox import EVENT, HEALTH, READING, Row

log = logging.getLogger("stationgw.uplink.mqtt")


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    last: int  # highest seq it carries
    first: int = 0  # lowest seq it carries (the NATS uplink's de-duplication id)


def messages(
    rows: Sequence[Row], prefix: str, station: str, batch: int, sep: str = "/"
) -> Iterator[Message]:
    """Rows (in seq order) -> messages: runs of consecutive readings batched, the rest one
    each; topics `<prefix><sep>readings` etc. (NATS subjects: sep "."). Pure."""
    i, n = 0, len(rows)
    while i < n:
        r = rows[i]
        if r.kind == READING:
            j = i + 1
            while (
                j < n
                and j - i < batch
                and rows[j].kind == READING
                and rows[j].seq == rows[j - 1].seq + 1
            ):
                j += 1
            items = [[x.device, x.metric, x.ts, x.value, x.flags] for x in rows[i:j]]
            body = {"station": station, "seq": r.seq, "last": rows[j - 1].seq, "readings": items}
            yield Message(f"{prefix}{sep}readings", _dump(body), rows[j - 1].seq, r.seq)
            i = j
            continue
        if r.kind == EVENT:
            body = {"station": station, "seq": r.seq, "last": r.seq, **r.json()}
            yield Message(f"{prefix}{sep}tickets", _dump(body), r.seq, r.seq)
        elif r.kind == HEALTH:
            body = {"station": station, "seq": r.seq, "last": r.seq, "health": r.json()}
            yield Message(f"{prefix}{sep}health", _dump(body), r.seq, r.seq)
        else:  # a kind this gateway does not know (a newer one wrote it): skip in order
            yield Message("", b"", r.seq, r.seq)
        i += 1


def _dump(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class _Session:
    """One connection: its paho client and the messages awaiting PUBACK."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self.acked = asyncio.Event()
        self.refused: str | None = None
        self.inflight: deque[tuple[int, int]] = deque()  # (mid, last seq) in send order
        self.done: set[int] = set()

    # paho's thread -> the loop
    def on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if rc.is_failure:
            self.refused = str(rc)
            self.loop.call_soon_threadsafe(self.down.set)
        else:
            self.loop.call_soon_threadsafe(self.up.set)

    def on_disconnect(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.down.set)

    def on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self.loop.call_soon_threadsafe(self._ack, mid, rc)

    def _ack(self, mid: int, rc: ReasonCode) -> None:
        if rc.is_failure:  # MQTT 5: the broker refused it; send again on a new connection
            self.refused = f"PUBACK {rc}"
            self.down.set()
            return
        self.done.add(mid)
        self.acked.set()


class MqttLink:
    name = "mqtt"

    def __init__(self, cfg: MqttUplinkSection, station: str, *, max_backoff_s: float = 30) -> None:
        self.cfg = cfg
        self.station = cfg.station or station
        self.prefix = f"county/{self.station}"
        self.client_id = cfg.client_id or f"stationgw-{self.station}-uplink"
        self.max_backoff_s = max_backoff_s
        self.connected = False
        self.confirmed = 0
        self.sent_messages = 0
        self.connections = 0
        self.last_error: str | None = None

    def status(self) -> dict[str, object]:
        return {
            "connected": self.connected,
            "broker": f"{self.cfg.host}:{self.cfg.port}",
            "topics": f"{self.prefix}/#",
            "messages_sent": self.sent_messages,
            "connections": self.connections,
            "last_error": self.last_error,
        }

    def _client(self, session: _Session) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311,
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(cfg.tls.insecure)
        client.max_inflight_messages_set(cfg.inflight)
        client.max_queued_messages_set(0)
        client.on_connect = session.on_connect
        client.on_disconnect = session.on_disconnect
        client.on_publish = session.on_publish
        return client

    async def run(self, feed: Feed) -> None:
        self.confirmed = await feed.cursor()
        delay = 0.5
        while True:
            session = _Session(asyncio.get_running_loop())
            client = self._client(session)
            connections = self.connections
            try:
                await self._session(feed, client, session)
                if self.connections > connections:  # it was up: the next try comes soon
                    delay = 0.5
            except OSError as e:
                self.last_error = f"{self.cfg.host}:{self.cfg.port}: {e}"
            finally:
                task = asyncio.current_task()
                if self.connected and not (task and task.cancelling()):  # not our own stop
                    log.warning("county broker %s:%d lost", self.cfg.host, self.cfg.port)
                self.connected = False
                client.disconnect()
                client.loop_stop()
                await feed.confirm(self.confirmed)
            if session.refused:
                self.last_error = session.refused
            self.last_error = self.last_error or "connection lost"
            log.info("county broker: %s; again in %.1f s", self.last_error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    async def _session(self, feed: Feed, client: mqtt.Client, s: _Session) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        await loop.run_in_executor(None, client.connect, cfg.host, cfg.port, cfg.keepalive_s)
        client.loop_start()
        up = asyncio.ensure_future(s.up.wait())
        down = asyncio.ensure_future(s.down.wait())
        await asyncio.wait({up, down}, timeout=cfg.keepalive_s, return_when="FIRST_COMPLETED")
        up.cancel()
        down.cancel()
        if not s.up.is_set() or s.down.is_set():
            self.last_error = s.refused or "no CONNACK"
            return
        self.connected = True
        self.connections += 1
        self.last_error = None
        log.info("county broker %s:%d connected; sending after seq %d", *self._where())
        sent = self.confirmed
        buffered: deque[Message] = deque()
        saved_at = loop.time()
        while not s.down.is_set():
            # PUBACKs: the cursor moves over the confirmed prefix
            while s.inflight and s.inflight[0][0] in s.done:
                mid, self.confirmed = s.inflight.popleft()
                s.done.discard(mid)
            if self.confirmed > feed.confirmed and (
                not s.inflight or loop.time() - saved_at > 0.25
            ):
                await feed.confirm(self.confirmed)
                saved_at = loop.time()
            if len(s.inflight) >= cfg.inflight:
                await self._wait(s, 1.0)
                continue
            if not buffered:
                rows = await feed.fetch(sent, cfg.batch_size * 20)
                if not rows:
                    await self._wait(s, 0.2, feed)
                    continue
                buffered.extend(messages(rows, self.prefix, self.station, cfg.batch_size))
            while buffered and len(s.inflight) < cfg.inflight:
                m = buffered.popleft()
                sent = m.last
                if not m.topic:
                    s.inflight.append((-m.last, m.last))
                    s.done.add(-m.last)
                    continue
                info = client.publish(m.topic, m.payload, qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return  # not connected any more: the next connection sends it again
                s.inflight.append((info.mid, m.last))
                self.sent_messages += 1

    async def _wait(self, s: _Session, seconds: float, feed: Feed | None = None) -> None:
        """Until a PUBACK, the connection's end, new rows (with `feed`) or `seconds`."""
        waits: list[asyncio.Future[object]] = [
            asyncio.ensure_future(s.acked.wait()),
            asyncio.ensure_future(s.down.wait()),
        ]
        if feed is not None:
            waits.append(asyncio.ensure_future(feed.wait(seconds)))
        await asyncio.wait(waits, timeout=seconds, return_when="FIRST_COMPLETED")
        for w in waits:
            w.cancel()
        s.acked.clear()

    def _where(self) -> tuple[str, int, int]:
        return self.cfg.host, self.cfg.port, self.confirmed
