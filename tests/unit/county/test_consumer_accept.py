"""The consumer's check of one message (`accept`): what it stores and what it refuses,
with the reason naming the key path."""

from __future__ import annotations

import json

from gateway.county.consumer import MAX_MESSAGE_BYTES, accept
from gateway.county.store import Batch

KNOWN = frozenset({"qs"})
TS = 1_780_000_000_000


def _readings(**over: object) -> bytes:
    body: dict[str, object] = {
        "station": "qs",
        "seq": 7,
        "last": 8,
        "readings": [["rg-01", "rain_mm", TS, 1.5, 0], ["rg-02", "rain_mm", TS, None, 4]],
    }
    return json.dumps({**body, **over}).encode()


def test_readings_get_their_own_seqs() -> None:
    b = Batch()
    assert accept(b, "county.qs.readings", _readings(), KNOWN, TS + 5)
    assert b.readings == [
        ("qs", 7, "rg-01", "rain_mm", TS, 1.5, 0),
        ("qs", 8, "rg-02", "rain_mm", TS, None, 4),
    ]
    assert b.seen == {"qs": TS + 5} and not b.refused


def test_refusals_say_why_and_where() -> None:
    cases = {
        "county.zz.readings": (_readings(station="zz"), "station 'zz' is not one of"),
        "county.qs.readings": (_readings(last=9), "last: 9 is not seq + 2 - 1"),
        "county.qs.tickets": (_readings(), "ticket: Field required"),
        "county.qs.gossip": (_readings(), "no kind 'gossip'"),
        "stations.qs.readings": (_readings(), "not county.<station>.<kind>"),
    }
    for subject, (data, why) in cases.items():
        b = Batch()
        assert not accept(b, subject, data, KNOWN, TS)
        (r,) = b.refused
        assert why in r.reason, (subject, r.reason)
        assert r.payload == data and not b.readings
    b = Batch()
    bad_ts = _readings(readings=[["rg-01", "rain_mm", "soon", 1.0, 0]])
    assert not accept(b, "county.qs.readings", bad_ts, KNOWN, TS)
    assert b.refused[0].reason.startswith("readings[0][2]: ")
    b = Batch()
    assert not accept(b, "county.qs.readings", b"{" * (MAX_MESSAGE_BYTES + 1), KNOWN, TS, 3)
    assert b.refused[0].reason.startswith(f"oversized: {MAX_MESSAGE_BYTES + 1} bytes")
    assert b.refused[0].deliveries == 3
    b = Batch()
    assert not accept(b, "county.qs.readings", _readings(station="other"), KNOWN, TS)
    assert "station: 'other' on subject" in b.refused[0].reason


def test_a_ticket_event_health_change_and_state_are_taken() -> None:
    b = Batch()
    ticket = {
        "station": "qs",
        "seq": 3,
        "last": 3,
        "ticket": {"id": 1, "kind": "hazard", "level": "red", "state": "discovered"},
        "event": {"id": 9, "at": TS, "kind": "opened", "level": "red"},
    }
    assert accept(b, "county.qs.tickets", json.dumps(ticket).encode(), KNOWN, TS)
    health = {"station": "qs", "seq": 4, "last": 4, "health": {"device": "rg-01", "online": False}}
    assert accept(b, "county.qs.health", json.dumps(health).encode(), KNOWN, TS)
    state = {"station": "qs", "at": TS, "name": "清水", "clock": {"sane": True, "ms": TS + 3000}}
    assert accept(b, "county.qs.state", json.dumps(state).encode(), KNOWN, TS)
    assert b.tickets[0][0:2] == ("qs", 3) and b.tickets[0][2]["level"] == "red"
    assert b.health[0][2]["online"] is False
    assert b.states[0][1]["name"] == "清水" and b.states[0][2] == TS
    assert not b.refused
