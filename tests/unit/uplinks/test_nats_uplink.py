"""The NATS uplink's pure parts: its section, subjects and ids, the state message and the
rate limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config.station import parse_config
from gateway.core.errors import ConfigError
from gateway.uplinks.mqtt import messages
from gateway.uplinks.nats import RateLimit, no_plan, state_body
from gateway.uplinks.outbox import EVENT, READING, Row

STATION = {
    "station": {"id": "qs", "name": "清水站"},
    "villages": [{"id": "v1", "name": "一村"}],
    "points": [{"id": "p1", "name": "一号点", "village": "v1", "lon": 110.1, "lat": 30.2}],
    "devices": [
        {
            "id": "rg-01",
            "name": "雨量计",
            "kind": "rain_gauge",
            "point": "p1",
            "metrics": {"rain_mm": {"unit": "mm", "min": 0, "max": 50}},
        }
    ],
    "database": {"path": "data/station.db"},
}


def _cfg(nats: dict[str, object], **over: object) -> object:
    return parse_config({**STATION, **over, "uplinks": {"nats": nats}}, Path("/s/station.toml"))


def test_the_section_names_its_keys_in_errors() -> None:
    cfg = _cfg({"servers": ["nats://a:4222"], "creds_file": "county.creds"})
    assert cfg.uplinks.nats.creds_file == Path("/s/county.creds")  # type: ignore[attr-defined]
    assert cfg.uplinks.names() == ["nats"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as e:
        _cfg({"servers": ["http://a"], "max_rate": 0})
    assert "uplinks.nats.servers[0]" in str(e.value) and "uplinks.nats.max_rate" in str(e.value)
    with pytest.raises(ConfigError) as e:
        _cfg({"servers": ["nats://a:4222"], "user": "u"})
    assert "uplinks.nats" in str(e.value) and "user and password go together" in str(e.value)
    with pytest.raises(ConfigError) as e:
        _cfg({"servers": ["nats://a:4222"]}, station={"id": "q.s", "name": "x"})
    assert "station.id: a NATS uplink needs a station id without '.'" in str(e.value)


def test_subjects_and_dedup_ids_follow_the_contract() -> None:
    rows = [
        Row(5, READING, "rg-01", "rain_mm", 1, 0.5, 0, None),
        Row(6, READING, "rg-01", "rain_mm", 2, 0.6, 0, None),
        Row(7, EVENT, None, None, None, None, None, '{"ticket": {"id": 1}, "event": {"id": 2}}'),
        Row(8, READING, "rg-01", "rain_mm", 3, 0.7, 0, None),
    ]
    out = list(messages(rows, "county.qs", "qs", 500, "."))
    assert [(m.topic, m.first, m.last) for m in out] == [
        ("county.qs.readings", 5, 6),
        ("county.qs.tickets", 7, 7),
        ("county.qs.readings", 8, 8),
    ]
    assert json.loads(out[0].payload)["readings"] == [
        ["rg-01", "rain_mm", 1, 0.5, 0],
        ["rg-01", "rain_mm", 2, 0.6, 0],
    ]
    assert json.loads(out[1].payload)["event"] == {"id": 2}


def test_the_state_message_has_the_contract_keys() -> None:
    cfg = _cfg({"servers": ["nats://a:4222"]})
    body = state_body(cfg, "qs", 1_780_000_000_000, backlog=3, disk_free_mb=12.5, plan=no_plan())  # type: ignore[arg-type]
    assert set(body) == {
        "station", "at", "name", "tz", "version", "lon", "lat", "villages", "points",
        "devices", "people", "plan", "disk_free_mb", "backlog", "clock",
    }  # fmt: skip
    assert body["name"] == "清水站" and body["backlog"] == 3
    assert body["points"] == [
        {"id": "p1", "name": "一号点", "village": "v1", "lon": 110.1, "lat": 30.2, "kind": None}
    ]
    assert body["devices"] == [
        {
            "id": "rg-01",
            "name": "雨量计",
            "point": "p1",
            "protocol": "mqtt_json",
            "metrics": {"rain_mm": {"name": None, "unit": "mm"}},  # the county names metrics
        }
    ]
    assert body["clock"] == {"sane": True, "ms": 1_780_000_000_000}
    unset = state_body(cfg, "qs", 5, backlog=0, disk_free_mb=None, plan=no_plan())  # type: ignore[arg-type]
    assert unset["clock"] == {"sane": False, "ms": 5}


def test_the_rate_limit_spreads_a_backlog() -> None:
    now = [0.0]
    limit = RateLimit(100, clock=lambda: now[0])
    assert limit.delay(100) == 0  # one second's burst
    assert limit.delay(50) == pytest.approx(0.5)
    now[0] = 1.0  # a second later: 100 tokens back, 50 of them owed
    assert limit.delay(100) == pytest.approx(0.5)


def test_a_duplicate_ack_counts_only_when_the_stream_holds_the_message() -> None:
    """JetStream answers a resend "duplicate" with the stream seq of the first copy; the
    uplink checks that seq holds this very message before it moves its cursor."""
    import asyncio
    from types import SimpleNamespace
    from typing import Any

    from gateway.uplinks.nats import NatsLink, _Resend, _Sent

    cfg = _cfg({"servers": ["nats://a:4222"]})
    link = NatsLink(cfg.uplinks.nats, cfg)  # type: ignore[attr-defined]

    class FakeJs:
        def __init__(self, held: str | None) -> None:
            self.held = held

        async def get_msg(self, stream: str, seq: int) -> Any:
            return SimpleNamespace(headers={"Nats-Msg-Id": self.held} if self.held else None)

    async def check(held: str | None) -> bool:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(SimpleNamespace(stream="COUNTY", seq=41, duplicate=True))
        try:
            await link._held(FakeJs(held), _Sent(fut, 12, 0.0, 10))  # type: ignore[arg-type]
        except _Resend as e:
            assert "qs:10" in str(e) and "stream seq 41" in str(e)
            return False
        return True

    assert asyncio.run(check("qs:10"))
    assert not asyncio.run(check("qs:7"))
    assert not asyncio.run(check(None))
    assert link.false_duplicates == 2
