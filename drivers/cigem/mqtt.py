"""CIGEM universal geohazard devices over MQTT (`$dp`), committed before acknowledged.

A second paho client of the gateway (client id `<broker.client_id>-cigem`, its own
persistent session) subscribes to the CIGEM topic; each burst of messages is decoded
(drivers/cigem.py), committed through the pipeline, and only then acknowledged. Sensor
names (`L1_LF_1`, `L1_QJ_1.X`) map to metrics per device in the station file; `S1_ZT`
status values (supply, solar, battery, signal, temperature, firmware) feed device health.
"""

from __future__ import annotations

import logging

from drivers.cigem import codec as cigem
from drivers.host import BatchBuilder, DriverContext, once
from drivers.link.mqtt_client import Message, MqttSource
from gateway.config.station import Device
from gateway.config.transports import CigemTransport

log = logging.getLogger("stationgw.cigem")


class CigemDriver:
    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.topic = cfg.cigem.topic
        self.by_dev: dict[str, tuple[Device, CigemTransport]] = {
            d.transport.dev_id: (d, d.transport)
            for d in cfg.devices
            if isinstance(d.transport, CigemTransport)
        }
        broker = cfg.broker.model_copy(update={"client_id": f"{cfg.broker.client_id}-cigem"[:64]})
        self._broker, self._capacity, self._runs = broker, cfg.pipeline.queue_max, 0
        self.source = MqttSource(broker, [self.topic], capacity=cfg.pipeline.queue_max)
        self.once = once("cigem")
        self.messages = 0

    def _message(self, b: BatchBuilder, msg: Message) -> None:
        source = f"mqtt {msg.topic}"
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
        self.ctx.metrics.messages.labels("cigem").inc()
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
            self.ctx.health.note(
                device.id, b.now, firmware=str(firmware) if firmware is not None else None, **nums
            )
        b.readings(device.id, values)
        b.seen(device.id)

    async def run(self) -> None:
        if self._runs:  # restarted after a crash: a stopped client does not start again
            self.source = MqttSource(self._broker, [self.topic], capacity=self._capacity)
        self._runs += 1
        await self.source.start()
        try:
            while True:
                msgs = await self.source.batch(self.ctx.config.pipeline.batch_max)
                b = BatchBuilder(self.ctx, "cigem", self.once)
                for msg in msgs:
                    self._message(b, msg)
                if not b.empty:
                    await self.ctx.submit(b.batch)
                self.ctx.metrics.acks.inc(self.source.ack(msgs))
        finally:
            await self.source.stop()
