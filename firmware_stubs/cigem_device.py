"""A simulated CIGEM universal geohazard device publishing to `$dp` (QoS 1).

Type-2 payloads (timestamped JSON): a crack meter `L1_LF_1`, a tilt sensor `L1_QJ_1`
(X, Y, angle) and the device status `S1_ZT_1`. Records buffered while offline are sent
late, several timestamps in one payload. Faults: `garbage` (bytes that are no CIGEM
payload), `bad_length` (a length field that lies), `truncated` (the payload cut short),
`unknown` (a device id nobody knows), `repeat` (the same payload twice, as after a lost
PUBACK), `silence` (nothing sent: the no-data rule's case). Field variants (`variant()`:
bare JSON, a type byte without the length) and type-3 files (`file_payload()`, a camera
picture) as some vendors' devices send them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.cigem import codec as cigem

FAULTS = ("garbage", "bad_length", "truncated", "unknown", "repeat", "silence")


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True)
class Sample:
    ts: int
    crack_mm: float
    tilt_x: float


def samples(count: int, start_ms: int, step_ms: int = 60_000) -> list[Sample]:
    return [
        Sample(start_ms + k * step_ms, round(0.2 + 0.01 * k, 4), round(0.1 * k, 2))
        for k in range(count)
    ]


def payload(dev_id: str, batch: list[Sample], battery: float = 87.0) -> bytes:
    doc = {
        dev_id: {
            "L1_LF_1": {iso(s.ts): s.crack_mm for s in batch},
            "L1_QJ_1": {iso(s.ts): {"X": s.tilt_x, "Y": 0.0, "angle": 1.5} for s in batch},
            "S1_ZT_1": {
                iso(batch[-1].ts): {
                    "ext_power_volt": 12.1,
                    "solar_volt": 18.2,
                    "battery_dump_energy": battery,
                    "signal_4g": -71,
                    "temp": 23.5,
                    "sw_version": "CG-2.1.7",
                }
            },
        }
    }
    return cigem.encode(2, doc)


VARIANTS = ("bare", "type_byte")


def variant(form: str, dev_id: str, batch: list[Sample]) -> bytes:
    """The payload as some vendors' firmware sends it: `bare` JSON (no type byte, no
    length) or a `type_byte` and the JSON at once (no length)."""
    good = payload(dev_id, batch)
    if form == "bare":
        return good[3:]
    if form == "type_byte":
        return good[:1] + good[3:]
    raise ValueError(f"unknown variant {form!r}; one of {', '.join(VARIANTS)}")


def file_payload(dev_id: str, name: str, at_ms: int | None, data: bytes) -> bytes:
    """Type 3, a file (a camera picture): type · descriptor length (2) · JSON descriptor
    `{devId: {"ds_id": name, "at": time}}` · file length (4, big-endian) · the file (the
    `$dp` binary layout, drivers/cigem/codec.py)."""
    desc: dict[str, str] = {"ds_id": name}
    if at_ms is not None:
        desc["at"] = iso(at_ms)
    head = cigem.encode(3, {dev_id: desc})
    return head + len(data).to_bytes(4, "big") + data


def faulty(fault: str, dev_id: str, batch: list[Sample]) -> list[bytes]:
    good = payload(dev_id, batch)
    if fault == "garbage":
        return [b"\x07garbage", good]
    if fault == "bad_length":
        return [good[:1] + (len(good)).to_bytes(2, "big") + good[3:], good]
    if fault == "unknown":
        return [payload("ghost-0000", batch), good]
    if fault == "truncated":
        return [good[: len(good) // 2], good]
    if fault == "repeat":
        return [good, good]
    if fault == "silence":
        return []
    if fault != "none":
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)} or none")
    return [good]


def publish(
    host: str, port: int, client_id: str, payloads: list[bytes], topic: str = "$dp"
) -> None:
    """Publish with QoS 1 and wait for every PUBACK."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.connect(host, port)
    c.loop_start()
    try:
        for p in payloads:
            c.publish(topic, p, qos=1).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


class Responder:
    """The device's side of `$cmd` downlinks, as the public firmware answers them: it
    subscribes to `$creq/<devId>/+` and answers on `$dr` (QoS 0, retained): `result=succ`
    for settings and reboot, its clock for `reqtime`, its status JSON for `getstatus`,
    its intervals for `reqsensortime`. `received` holds (topic, payload) as they came."""

    def __init__(self, host: str, port: int, dev_id: str, answer_topic: str = "$dr") -> None:
        self.dev_id = dev_id
        self.answer_topic = answer_topic
        self.received: list[tuple[str, str]] = []
        self.intervals = {"sample_intv": 10, "upload_intv": 60, "plus_intv": 5}
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{dev_id}-cmd")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(f"$creq/{dev_id}/+", qos=1)
        if not self._subscribed.wait(10):
            raise TimeoutError("the broker did not confirm the subscription")

    def reply(self, payload: str) -> str:
        cmd, _, rest = payload.removeprefix("$cmd=").partition("&")
        if cmd == "reqtime":
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            return f"$cmd=reqtime&time={now}"
        if cmd == "getstatus":
            return '$cmd=getstatus&state={"ext_power_volt":12.10,"sw_version":"CG-2.1.7"}'
        if cmd == "reqsensortime":
            sensor = dict(p.split("=", 1) for p in rest.split("&") if "=" in p)["sensor_id"]
            i = self.intervals
            return (
                f"$cmd=reqsensortime&sensor_id={sensor}&sample_intv={i['sample_intv']}"
                f"&upload_intv={i['upload_intv']}&plus_intv={i['plus_intv']}"
            )
        if cmd == "setsensortime":
            for p in rest.split("&"):
                key, _, value = p.partition("=")
                if key in self.intervals:
                    self.intervals[key] = int(value)
        return f"$cmd={cmd}&result=succ"

    def _on_message(self, c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        payload = msg.payload.decode()
        self.received.append((msg.topic, payload))
        c.publish(self.answer_topic, self.reply(payload).encode(), qos=0, retain=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
