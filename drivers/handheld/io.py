"""Handheld recorders: patrol records over MQTT and from a serial/USB dock.

MQTT: `stations/<station>/<device>/patrol`, QoS 1, through a paho client of its own
(`<broker.client_id>-handheld`); acknowledged after the records are stored. Dock: the
line protocol of drivers/handheld/codec.py, answered `OK <n>` after the commit. Every record is
kept (flagged where it does not match the checklists); a record with `hazard` opens a
hazard ticket directly, with the inspector as the actor, once per record id.
"""

from __future__ import annotations

import logging

from drivers.handheld import codec as handheld
from drivers.handheld.config import HandheldTransport
from drivers.host import BatchBuilder, FieldSetup, Host, once
from drivers.link.config import SerialPort
from drivers.link.framing import Reject, Stream
from drivers.link.mqtt_client import Message, MqttSource
from drivers.link.serial_line import LineLost, SerialLine

log = logging.getLogger("stationgw.handheld")


class HandheldDriver:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.devices = {d.id for d in host.devices if isinstance(d.transport, HandheldTransport)}
        self.topic = f"stations/{host.station}/+/patrol"
        broker = host.broker.model_copy(
            update={"client_id": f"{host.broker.client_id}-handheld"[:64]}
        )
        self._broker, self._capacity, self._runs = broker, host.queue_max, 0
        self.source = MqttSource(broker, [self.topic], capacity=host.queue_max)
        self.once = once("handheld")
        self.stored = 0
        self.duplicates = 0
        self.hazards = 0
        self.lines: dict[str, SerialLine] = {}

    async def store(self, device: str, records: list[handheld.Record], received: int) -> int:
        """The records and their hazard tickets, in one transaction."""
        if not records:
            return 0
        results = await self.host.store_patrol(device, records, received)
        for r, out in zip(records, results, strict=True):
            if out.new:
                self.stored += 1
                if out.flags:
                    self.once.warning(
                        f"flags:{device}:{out.flags[0]}",
                        "%s: patrol record %s kept, flagged: %s",
                        device,
                        r.id,
                        "; ".join(out.flags),
                    )
            else:
                self.duplicates += 1
            if out.new_ticket and out.ticket is not None:
                self.hazards += 1
        return len(records)

    # --- MQTT -------------------------------------------------------------------------

    def _decode(self, b: BatchBuilder, msg: Message) -> tuple[str, list[handheld.Record]] | None:
        parts = msg.topic.split("/")
        device = parts[2] if len(parts) == 4 else ""
        source = f"mqtt {msg.topic}"
        if device not in self.devices:
            b.quarantine(
                source,
                "unknown_device",
                f"handheld {device!r} is not configured (transport kind handheld)",
                msg.payload,
            )
            return None
        try:
            records = handheld.decode(msg.payload)
        except handheld.HandheldError as e:
            self.host.count(device, "malformed", b.now)
            b.quarantine(source, "malformed", f"{device}: patrol record: {e.reason}", msg.payload)
            return None
        b.seen(device)
        return device, records

    async def run(self) -> None:
        if self._runs:  # restarted after a crash: a stopped client does not start again
            self.source = MqttSource(self._broker, [self.topic], capacity=self._capacity)
        self._runs += 1
        await self.source.start()
        try:
            while True:
                msgs = await self.source.batch(self.host.batch_max)
                b = BatchBuilder(self.host, "handheld", self.once)
                by_device: dict[str, list[handheld.Record]] = {}
                for msg in msgs:
                    got = self._decode(b, msg)
                    if got is not None:
                        by_device.setdefault(got[0], []).extend(got[1])
                if not b.empty:
                    await self.host.submit(b.batch)
                for device, records in by_device.items():
                    await self.store(device, records, b.now)
                self.host.counter("acks", n=self.source.ack(msgs))
        finally:
            await self.source.stop()

    # --- the dock ---------------------------------------------------------------------

    async def run_dock(self, port: SerialPort, device: str) -> None:
        """Records from a dock; `device` is the handheld docked there."""
        line = self.lines[port.id] = SerialLine(port)
        source = f"handheld dock {port.id}"
        stream: Stream[handheld.Record | handheld.End] = Stream(handheld.take)
        pending: list[handheld.Record] = []
        b = BatchBuilder(self.host, "handheld", self.once)
        try:
            while True:
                await line.open()
                try:
                    while True:
                        for item in stream.feed(await line.read()):
                            if isinstance(item, Reject):
                                self.host.count(device, "malformed", b.now)
                                b.quarantine(
                                    source, item.kind, f"{device}: {item.describe()}", item.raw
                                )
                            elif isinstance(item, handheld.End):
                                b.seen(device)
                                await self.host.submit(b.batch)
                                n = await self.store(device, pending, b.now)
                                pending = []
                                b = BatchBuilder(self.host, "handheld", self.once)
                                await line.write(f"OK {n}\n".encode())
                            else:
                                pending.append(item)
                except LineLost as e:
                    log.warning(
                        "%s: %s; reopening (%d records of an unfinished batch dropped "
                        "— the dock sends them again)",
                        source,
                        e,
                        len(pending),
                    )
                    line.close()
                    pending = []
                    partial = stream.flush("serial line lost")
                    if partial is not None:
                        b.quarantine(
                            source, partial.kind, f"{device}: {partial.describe()}", partial.raw
                        )
        finally:
            line.close()


async def start(host: Host, setup: FieldSetup) -> HandheldDriver:
    """The handhelds' MQTT subscriber and one reader per dock on a serial port."""
    driver = HandheldDriver(host)
    setup.spawn("handheld", driver.run)
    for port in setup.serial_ports:
        if port.protocol == "handheld_dock" and port.device:
            setup.spawn(f"dock {port.id}", driver.run_dock, port, port.device)
    return driver
