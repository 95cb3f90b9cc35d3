"""Malformed and oversized input: every JSON payload fuzzed through the pipeline's decode
step (0 exceptions, 0 malformed readings outside quarantine), 1 MB MQTT bodies cut and
quarantined on arrival, frames claiming the largest lengths their headers can hold held
within a bounded buffer (measured with tracemalloc)."""

from __future__ import annotations

import json
import math
import tomllib
import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gb26875 import codec as gb26875
from drivers.handheld import codec as handheld
from drivers.link.broker import Broker
from drivers.link.framing import Stream
from drivers.link.mqtt_client import KEEP_OVERSIZED, MAX_PAYLOAD, Message, MqttSource
from drivers.modbus import codec as modbus_rtu
from drivers.mqtt_json.codec import MAX_TS_MS, MIN_TS_MS
from drivers.sl651 import codec as sl651
from gateway.config.station import parse_config
from gateway.events import Hub
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.registry import Registry
from gateway.metrics import Metrics
from tests.conftest import STATION

RX = 1_780_000_123_456


def pipeline() -> Pipeline:
    text = STATION.format(broker_port=1883, http_port=0)
    cfg = parse_config(tomllib.loads(text), Path("/nonexistent/station.toml"))
    # only build() is used: decoding and quarantine, no IO
    return Pipeline(None, None, None, Registry(cfg), Hub(), Metrics(), batch_max=100)  # type: ignore[arg-type]


PIPE = pipeline()
TOPIC = "stations/test/rg-01/telemetry"


def msg(payload: bytes, topic: str = TOPIC, oversized: int = 0) -> Message:
    return Message(topic, payload, 1, 1, RX, 1, oversized)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """Reports with each field drawn from valid and invalid values."""
    report: dict[str, Any] = {}
    if draw(st.booleans()):
        report["ts"] = draw(st.one_of(st.integers(MIN_TS_MS - 5, MAX_TS_MS + 5), json_values))
    if draw(st.booleans()):
        report["seq"] = draw(st.one_of(st.integers(-3, 2**64), json_values))
    metrics = st.sampled_from(["rain_mm", "battery_v", "nope", ""])
    report["values"] = draw(
        st.one_of(
            st.dictionaries(metrics, st.one_of(st.floats(), st.integers(), json_values)),
            json_values,
        )
    )
    if draw(st.booleans()):
        report[draw(st.text(max_size=5))] = draw(json_values)
    body: Any = [report] * draw(st.integers(1, 3)) if draw(st.booleans()) else report
    return json.dumps(body, allow_nan=True).encode()


payloads = st.one_of(
    near_valid(),
    st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), json_values),
    st.binary(max_size=200),
    near_valid().map(lambda b: b[: len(b) // 2]),
)


@settings(max_examples=1000, deadline=None)
@given(
    payloads, st.sampled_from([TOPIC, "stations/test/rg-01/status", "stations/test/zz/telemetry"])
)
def test_every_json_payload_is_stored_valid_or_quarantined(payload: bytes, topic: str) -> None:
    batch = PIPE.build([msg(payload, topic)])  # must not raise
    for r in batch.readings:  # whatever got through is a well-formed reading
        assert r.device == "rg-01" and r.metric in ("rain_mm", "battery_v")
        assert math.isfinite(r.value)
        assert MIN_TS_MS <= r.ts <= MAX_TS_MS
    decoded = bool(batch.readings) or bool(batch.statuses)
    # a message is either taken (readings or a status) or quarantined (with its reason)
    assert decoded or len(batch.quarantined) == 1
    for q in batch.quarantined:
        assert q.reason and q.source == topic


def test_a_1_mb_body_is_cut_on_arrival_and_quarantined() -> None:
    source = MqttSource(Broker(protocol="3.1.1"), [], capacity=1000)

    class Raw:  # what paho hands the callback
        def __init__(self, payload: bytes) -> None:
            self.topic, self.payload, self.qos, self.mid = TOPIC, payload, 1, 7
            self.retain = False

    body = b'{"values": {"rain_mm": 1}, "pad": "' + b"x" * (1 << 20) + b'"}'
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(50):  # 50 MB arrive, one after the other
        source._on_message(None, None, Raw(body))  # type: ignore[arg-type]
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    taken = source.take(100)
    assert len(taken) == 50
    assert all(m.oversized == len(body) and len(m.payload) == KEEP_OVERSIZED for m in taken)
    assert kept < 50 * (KEEP_OVERSIZED + 1024)  # about 1 KiB kept per MB received
    batch = PIPE.build(taken)
    assert batch.readings == [] and len(batch.quarantined) == 50
    assert "over the limit" in batch.quarantined[0].reason
    assert len(body) > MAX_PAYLOAD


def claiming_the_most() -> dict[str, tuple[Any, bytes]]:
    sl = bytearray(bytes.fromhex("7E7E000081120005FFFF3200200225B9260701063006F1F1"))
    sl[11] = (sl[11] & 0xF0) | 0x0F
    sl[12] = 0xFF  # 4,095 bytes of body, the most its 12-bit length holds
    gb = bytearray(b"@@" + bytes(25))
    gb[24:26] = (0xFFFF).to_bytes(2, "little")  # 65,535 bytes of data
    return {
        "sl651": (sl651.take, bytes(sl)),
        "gb26875": (gb26875.take, bytes(gb)),
        "handheld": (handheld.take, b'{"kind": "record", "note": "'),  # a line with no end
        "modbus_rtu": (modbus_rtu.take, bytes([1, 3, 0xFF])),
    }


def test_frames_claiming_huge_lengths_are_held_in_bounded_memory() -> None:
    chunk = bytes(1024)
    for name, (take, header) in claiming_the_most().items():
        warm: Stream[Any] = Stream(take)  # what a first frame imports or caches, not counted
        warm.feed(header + chunk)
        stream: Stream[Any] = Stream(take)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        most = 0
        stream.feed(header)
        for _ in range(256):  # 256 KiB (4 x the longest frame) of a frame that never ends
            stream.feed(chunk)
            most = max(most, stream.pending)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        print(f"{name}: at most {most} bytes pending, {peak} bytes peak over 256 KiB fed")
        assert most <= 70 * 1024, name  # the longest frame or line the protocol allows
        assert peak < 1 << 20, name
