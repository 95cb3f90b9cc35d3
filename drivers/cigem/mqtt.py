"""CIGEM universal geohazard devices over MQTT (`$dp`), committed before acknowledged.

Payloads as bare JSON or behind a single type byte are accepted and counted per device as
variants (drivers/cigem/codec.py); type 3 files that are JPEG pictures are kept like SL651
pictures (the data folder's pictures/, served on the Devices page). Queued commands
(drivers/cigem/commands.py) are published to `command_topic` after the device's next
message was committed; its answer on `answer_topic` settles the command.

A second paho client of the gateway (client id `<broker.client_id>-cigem`, its own
persistent session) subscribes to the CIGEM topic; each burst of messages is decoded
(drivers/cigem/codec.py), committed through the pipeline, and only then acknowledged. Sensor
names (`L1_LF_1`, `L1_QJ_1.X`) map to metrics per device in the station file; `S1_ZT`
status values (supply, solar, battery, signal, temperature, firmware) feed device health.
"""

from __future__ import annotations

import logging

from drivers.cigem import codec as cigem
from drivers.cigem import commands
from drivers.cigem.config import CigemSection, CigemTransport
from drivers.host import BatchBuilder, DeviceRef, FieldSetup, Host, once
from drivers.link.mqtt_client import Message, MqttSource

log = logging.getLogger("stationgw.cigem")
AWAITING_MAX = 256  # commands of one kind sent and awaiting their answer, at most


class CigemDriver:
    def __init__(self, host: Host, section: CigemSection) -> None:
        self.host = host
        self.topic = section.topic
        self.by_dev: dict[str, tuple[DeviceRef, CigemTransport]] = {
            d.transport.dev_id: (d, d.transport)
            for d in host.devices
            if isinstance(d.transport, CigemTransport)
        }
        broker = host.broker.model_copy(update={"client_id": f"{host.broker.client_id}-cigem"[:64]})
        self._broker, self._capacity, self._runs = broker, host.queue_max, 0
        self.section = section
        self.answer_topic = section.answer_topic
        self.subscriptions = [self.topic, self.answer_topic, f"{self.answer_topic}/+"]
        self.source = self._source()
        # commands sent and not yet answered: the firmware's $cmd name -> (device, queue id)
        self.awaiting: dict[str, list[tuple[str, int]]] = {}
        self.once = once("cigem")
        self.messages = 0
        self.pictures: list[tuple[str, int, bytes]] = []  # this burst's: device, time, JPEG
        self.answers: list[Message] = []  # this burst's answers to commands
        self.reported: set[str] = set()  # devices heard in this burst (awake)

    def _source(self) -> MqttSource:
        # answers are not kept for later subscribers: a retained one is an old answer
        fresh = frozenset(self.subscriptions[1:])
        return MqttSource(
            self._broker, self.subscriptions, capacity=self._capacity, fresh_only=fresh
        )

    def _message(self, b: BatchBuilder, msg: Message) -> None:
        source = f"mqtt {msg.topic}"
        if msg.topic == self.answer_topic or msg.topic.startswith(f"{self.answer_topic}/"):
            self.answers.append(msg)
            return
        if msg.oversized:
            b.quarantine(source, "malformed", f"{msg.oversized} bytes: over the limit", msg.payload)
            return
        try:
            m = cigem.decode(msg.payload)
        except cigem.CigemError as e:
            b.quarantine(source, "malformed", f"CIGEM payload: {e}", msg.payload)
            return
        known = self.by_dev.get(m.dev_id)
        if known is None:
            b.quarantine(
                source,
                "unknown_device",
                f"CIGEM device {m.dev_id!r} is not configured",
                msg.payload,
            )
            return
        device, t = known
        self.messages += 1
        self.host.counter("messages", "cigem")
        self.reported.add(device.id)
        if m.variant is not None:
            b.variant(device.id, m.variant)
        if m.file is not None:
            self._file(b, source, device.id, m.file, msg)
            return
        values: list[tuple[str, int, float]] = []
        status: dict[str, float | str] = {}
        for v in m.values:
            ts = v.ts if v.ts is not None else msg.received_ms
            field = v.name.rpartition(".")[2]
            if v.name.startswith(cigem.STATUS_SENSOR) and field in cigem.STATUS_HEALTH:
                status[cigem.STATUS_HEALTH[field]] = v.value
            metric = t.sensors.get(v.name)
            if metric is None:
                if not v.name.startswith(cigem.STATUS_SENSOR):
                    self.once.warning(
                        f"unmapped:{device.id}:{v.name}",
                        "%s: CIGEM sensor %s is not mapped to a metric (transport.sensors); "
                        "not stored",
                        device.id,
                        v.name,
                    )
                continue
            if isinstance(v.value, float):
                values.append((metric, ts, v.value))
        if status:
            firmware = status.pop("firmware", None)
            nums = {k: float(x) for k, x in status.items() if isinstance(x, int | float)}
            self.host.note(
                device.id, b.now, firmware=str(firmware) if firmware is not None else None, **nums
            )
        b.readings(device.id, values)
        b.seen(device.id)

    def _file(self, b: BatchBuilder, source: str, device: str, f: cigem.File, msg: Message) -> None:
        """Type 3: a JPEG is kept as the device's picture (after the batch's commit, before
        the acknowledgement); any other file is quarantined, saying what it is."""
        b.seen(device)
        if not f.data.startswith(b"\xff\xd8"):
            b.quarantine(
                source,
                "malformed",
                f"{device}: CIGEM type 3 file {f.name!r} of {len(f.data)} bytes is not a JPEG "
                f"picture (starts {f.data[:2].hex(' ').upper() or 'empty'}); not kept",
                msg.payload,
            )
            return
        self.pictures.append((device, f.at if f.at is not None else msg.received_ms, f.data))

    async def _commands(self, device_id: str) -> None:
        t = next(tr for d, tr in self.by_dev.values() if d.id == device_id)
        for command_id, name, args in await self.host.commands_due(device_id):
            try:
                payload = commands.query(name, args, t)
            except commands.CommandError as e:
                await self.host.command_failed(command_id, str(e))
                continue
            topic = self.section.command_topic.format(dev_id=t.dev_id, id=command_id)
            self.source.publish(topic, payload.encode(), qos=1)
            await self.host.command_sent(command_id)
            waiting = self.awaiting.setdefault(commands.CMD[name], [])
            waiting[:] = [w for w in waiting if w[1] != command_id] + [(device_id, command_id)]
            del waiting[:-AWAITING_MAX]  # the oldest were never answered: the queue retries

    async def _answer(self, msg: Message) -> None:
        """A device's `$dr` answer: to the one device waiting for that command (named by
        the topic's last level when there is one); with several waiting it is ambiguous."""
        got = commands.answer(msg.payload)
        if got is None:
            log.debug("CIGEM answer on %s is no answer to a command: %r", msg.topic, msg.payload)
            return
        name, ok, text = got
        waiting = self.awaiting.get(commands.CMD[name], [])
        dev_id = msg.topic[len(self.answer_topic) + 1 :] if msg.topic != self.answer_topic else ""
        if dev_id:
            known = self.by_dev.get(dev_id)
            waiting_here = [w for w in waiting if known is not None and w[0] == known[0].id]
        else:
            waiting_here = list(waiting)
        if len(waiting_here) != 1:
            self.once.warning(
                f"answer:{name}:{len(waiting_here)}",
                "CIGEM answer %r on %s: %d devices wait for %s; not matched",
                msg.payload[:80],
                msg.topic,
                len(waiting_here),
                name,
            )
            return
        device_id, command_id = waiting_here[0]
        waiting.remove(waiting_here[0])
        if ok:
            await self.host.command_answered(device_id, name, text)
        else:
            await self.host.command_failed(command_id, text)

    async def run(self) -> None:
        if self._runs:  # restarted after a crash: a stopped client does not start again
            self.source = self._source()
        self._runs += 1
        await self.source.start()
        try:
            while True:
                msgs = await self.source.batch(self.host.batch_max)
                b = BatchBuilder(self.host, "cigem", self.once)
                self.pictures, self.answers, self.reported = [], [], set()
                for msg in msgs:
                    self._message(b, msg)
                if not b.empty:
                    await self.host.submit(b.batch)
                for device, at, jpeg in self.pictures:  # kept before the PUBACK
                    if await self.host.store_picture(device, at, jpeg):
                        log.info("%s: picture of %d bytes kept", device, len(jpeg))
                for msg in self.answers:
                    await self._answer(msg)
                for device_id in sorted(self.reported):  # awake now: its queued commands
                    await self._commands(device_id)
                self.host.counter("acks", n=self.source.ack(msgs))
        finally:
            await self.source.stop()


async def start(host: Host, setup: FieldSetup) -> CigemDriver:
    """One subscriber on the `[cigem]` topic for every CIGEM device."""
    section = setup.section if isinstance(setup.section, CigemSection) else CigemSection()
    driver = CigemDriver(host, section)
    setup.spawn("cigem", driver.run)
    return driver
