"""MQTT JSON payloads: decoded from bytes, or refused with the key and the reason."""

from __future__ import annotations

import pytest

from drivers.mqtt_json.codec import Report, decode_status, decode_telemetry, parse_topic
from gateway.core.errors import PayloadError

RX = 1_780_000_123_456


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            b'{"ts": 1780000000000, "values": {"rain_mm": 0.5}}',
            [Report(1780000000000, None, (("rain_mm", 0.5),))],
        ),
        (
            b'{"ts": 1780000000000, "seq": 7, "values": {"rain_mm": 1, "battery_v": 3.9}}',
            [Report(1780000000000, 7, (("rain_mm", 1.0), ("battery_v", 3.9)))],
        ),
        (b'{"values": {"rain_mm": 0}}', [Report(RX, None, (("rain_mm", 0.0),))]),
        (
            b'{"ts": "2026-07-01T06:30:00+08:00", "values": {"z": -1.5}}',
            [Report(1782858600000, None, (("z", -1.5),))],
        ),
        (
            b' [{"ts": 1780000000000, "values": {"a": 1}}, {"ts": 1780000060000, "values": {"a": 2}}]',
            [
                Report(1780000000000, None, (("a", 1.0),)),
                Report(1780000060000, None, (("a", 2.0),)),
            ],
        ),
    ],
)
def test_valid_payloads(payload: bytes, expected: list[Report]) -> None:
    assert decode_telemetry(payload, RX) == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "(top level): Invalid JSON"),
        (
            b'{"ts": 1780000000, "values": {"a": 1}}',
            "ts: 1780000000 is before 2000-01-01 (looks like seconds",
        ),
        (b'{"ts": 1780000000000000, "values": {"a": 1}}', "after 2100-01-01"),
        (b'{"values": {}}', "values: Dictionary should have at least 1 item"),
        (b'{"values": {"a": "wet"}}', "values.a: Input should be a valid number"),
        (b'{"values": {"a": NaN}}', "values.a: Input should be a finite number"),
        (b'{"values": {"a": 1}, "colour": 1}', "colour: unknown key"),
        (
            b'[{"values": {"a": 1}}, {"values": {"a": null}}]',
            "[1].values.a: Input should be a valid number",
        ),
        (b"[]", "List should have at least 1 item"),
        (b'{"ts": "yesterday", "values": {"a": 1}}', "ts"),
        (b'{"ts": "2026-07-01T06:30:00", "values": {"a": 1}}', "ts"),
    ],
)
def test_invalid_payloads_name_the_key(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_telemetry(payload, RX)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("stations/qs/rg-01/telemetry", ("qs", "rg-01", "telemetry")),
        ("stations/qs/rg-01/status", ("qs", "rg-01", "status")),
        ("stations/qs/rg-01/other", None),
        ("stations/qs//telemetry", None),
        ("county/qs/rg-01/telemetry", None),
        ("stations/qs/rg-01/telemetry/x", None),
    ],
)
def test_topics(topic: str, expected: tuple[str, str, str] | None) -> None:
    t = parse_topic(topic)
    assert (None if t is None else (t.station, t.device, t.kind)) == expected


@pytest.mark.parametrize(("payload", "online"), [(b"online", True), (b"offline\n", False)])
def test_status(payload: bytes, online: bool) -> None:
    assert decode_status(payload) is online


def test_bad_status() -> None:
    with pytest.raises(PayloadError, match="'online' or 'offline'"):
        decode_status(b"maybe")
