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
