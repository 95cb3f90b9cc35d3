"""MQTT JSON payloads: decoded from bytes, or refused with the key and the reason."""

from __future__ import annotations

import pytest

from drivers.mqtt_json.codec import (
    MAX_REPORTS,
    Report,
    decode_status,
    decode_telemetry,
    parse_topic,
)
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
        (b'{"values": {"rain_mm": 0}}', [Report(RX, None, (("rain_mm", 0.0),), False)]),
        # a float timestamp: its fraction of a millisecond dropped, the same window
        (
            b'{"ts": 1780000000000.75, "values": {"a": 1}}',
            [Report(1780000000000, None, (("a", 1.0),))],
        ),
        (
            b'{"ts": "2026-07-01T06:30:00Z", "seq": 9223372036854775807, "values": {"a": 1}}',
            [Report(1782887400000, 2**63 - 1, (("a", 1.0),))],
        ),
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
        # issue 21: seq beyond SQLite's integers is refused here, never crashes bookkeeping
        (
            b'{"ts":1796395547000,"seq":9223372036854775808,"values":{"level_m":2}}',
            "seq: Input should be less than or equal to 9223372036854775807",
        ),
        (b'{"seq": -1, "values": {"a": 1}}', "seq: Input should be greater than or equal to 0"),
        (b'{"seq": 1.0, "values": {"a": 1}}', "seq: Input should be a valid integer"),
        (b'{"seq": "17", "values": {"a": 1}}', "seq: Input should be a valid integer"),
        # strict numbers: a boolean and a number in a string are refused
        (b'{"values": {"a": true}}', "values.a: Input should be a valid number"),
        (b'{"values": {"a": "3.5"}}', "values.a: Input should be a valid number"),
        (b'{"values": {"a": 1e400}}', "values.a: Input should be a finite number"),
        (b'{"values": {"a": 1' + b"0" * 400 + b"}}", "values.a: Input should be a finite number"),
        (b'{"ts": "1780000000000", "values": {"a": 1}}', "is not a number of milliseconds nor"),
        (
            b'{"ts": true, "values": {"a": 1}}',
            "ts: must be a JSON number of milliseconds or an ISO",
        ),
        (b'{"ts": [1], "values": {"a": 1}}', "ts: must be a JSON number of milliseconds or an ISO"),
    ],
)
def test_invalid_payloads_name_the_key(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_telemetry(payload, RX)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        # the same window and the same words whatever the format (issue 21)
        (b"946684799999", "ts: 946684799999 is before 2000-01-01"),
        (b"4102444800001", "ts: 4102444800001 is after 2100-01-01"),
        (b"4102444800001.5", "ts: 4102444800001.5 is after 2100-01-01"),
        (b"1e300", "ts: 1e+300 is after 2100-01-01"),
        (b"-5", "ts: -5 is before 2000-01-01"),
        (b'"9999-12-31T23:59:59+00:00"', "ts: '9999-12-31T23:59:59+00:00' is after 2100-01-01"),
        (b'"2100-01-01T00:00:00.001Z"', "ts: '2100-01-01T00:00:00.001Z' is after 2100-01-01"),
        (b'"1970-01-01T00:00:00Z"', "ts: '1970-01-01T00:00:00Z' is before 2000-01-01"),
        (b'"0001-01-01T00:00:00+08:00"', "ts: '0001-01-01T00:00:00+08:00' is before 2000-01-01"),
        (b'"0001-01-01T00:00:00-08:00"', "ts: '0001-01-01T00:00:00-08:00' is before 2000-01-01"),
        (b"-1" + b"0" * 400, "ts: -10000000000...(402 characters) is before 2000-01-01"),
    ],
)
def test_one_time_window_for_every_format(ts: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_telemetry(b'{"ts": ' + ts + b', "values": {"a": 1}}', RX)
    assert str(err.value).startswith(reason)
    with pytest.raises(PayloadError) as many:
        decode_telemetry(b'[{"values": {"a": 1}}, {"ts": ' + ts + b', "values": {"a": 1}}]', RX)
    assert str(many.value).startswith("[1]." + reason)


def test_the_window_edges_are_inside() -> None:
    for ts in (
        b"946684800000",
        b"4102444800000",
        b'"2000-01-01T00:00:00Z"',
        b'"2100-01-01T00:00:00Z"',
    ):
        assert decode_telemetry(b'{"ts": ' + ts + b', "values": {"a": 1}}', RX)[0].timed


def test_list_limit_is_one_number() -> None:
    one = b'{"ts": 1780000000000, "values": {"a": 1}}'
    assert len(decode_telemetry(b"[" + b",".join([one] * MAX_REPORTS) + b"]", RX)) == MAX_REPORTS
    with pytest.raises(PayloadError, match=f"at most {MAX_REPORTS} items"):
        decode_telemetry(b"[" + b",".join([one] * (MAX_REPORTS + 1)) + b"]", RX)


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
