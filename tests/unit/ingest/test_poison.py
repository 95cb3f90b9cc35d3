"""One message never stops the others (issue 21, item 1): errors anywhere on the path of
one message quarantine that message with the reason; its neighbours are stored; and a
message the process dies on repeatedly is set aside as a dead letter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from drivers.link.mqtt_client import Message
from gateway.ingest.commit import Batch, Outcome
from gateway.ingest.dead_letter import DeadLetters, after_restart, digest
from tests.unit.ingest.test_whole_path import RX, query, station

TOPIC = "stations/test/rg-01/telemetry"


def report(seq: int, **extra: Any) -> bytes:
    return json.dumps({"ts": RX + seq, "seq": seq, "values": {"rain_mm": 1.0}, **extra}).encode()


def msgs(payloads: list[bytes]) -> list[Message]:
    return [Message(TOPIC, p, 1, i + 1, RX, 1) for i, p in enumerate(payloads)]


def test_the_seq_of_the_issue_is_quarantined_and_its_neighbours_stored() -> None:
    poison = b'{"ts":1796395547000,"seq":9223372036854775808,"values":{"rain_mm":2}}'
    with station() as (pipe, source, _):
        batch = msgs([report(1), poison, report(2)])
        asyncio.run(pipe._handle(batch))
        assert source.acked == [1, 2, 3]
        assert query(pipe, "SELECT count(*) FROM readings") == [(2,)]
        [(reason, payload)] = query(pipe, "SELECT reason, payload FROM quarantine")
        assert reason == (
            "bad payload from rg-01: seq: Input should be less than or equal to 9223372036854775807"
        )
        assert payload == poison
        assert query(pipe, "SELECT last_seq FROM seq_gaps") == [(2,)]


def test_an_error_while_committing_quarantines_only_that_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defence in depth: whatever raises inside the commit (here an OverflowError, as
    SQLite raised for issue 21) sends the batch through one by one; the culprit is
    quarantined with the exception, the other messages are stored and acknowledged."""
    with station() as (pipe, source, _):
        commit = pipe.ingestor.commit

        def failing(batch: Batch, now: int, **kw: Any) -> Outcome:
            if any(r.ts == RX + 13 for r in batch.readings):
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
            return commit(batch, now, **kw)

        monkeypatch.setattr(pipe.ingestor, "commit", failing)
        asyncio.run(pipe._handle(msgs([report(s) for s in range(10, 17)])))
        assert source.acked == list(range(1, 8))
        rows = [ts - RX for (ts,) in query(pipe, "SELECT ts FROM readings ORDER BY ts")]
        assert rows == [10, 11, 12, 14, 15, 16]
        [(reason,)] = query(pipe, "SELECT reason FROM quarantine")
        assert reason == (
            "OverflowError while storing or judging (topic 'stations/test/rg-01/telemetry'): "
            "Python int too large to convert to SQLite INTEGER"
        )
        # the rules' state was rolled back with the failed transaction and goes on
        asyncio.run(pipe._handle(msgs([report(20)])))
        assert len(query(pipe, "SELECT ts FROM readings")) == 7


def test_an_error_while_decoding_quarantines_only_that_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with station() as (pipe, source, _):
        mapping = pipe.registry.map

        def failing(device: str, reports: list[Any]) -> Any:
            if reports[0].seq == 3:
                raise ValueError("a bug in the mapping")
            return mapping(device, reports)

        monkeypatch.setattr(pipe.registry, "map", failing)
        asyncio.run(pipe._handle(msgs([report(s) for s in range(1, 6)])))
        assert source.acked == [1, 2, 3, 4, 5]
        assert len(query(pipe, "SELECT ts FROM readings")) == 4
        [(reason,)] = query(pipe, "SELECT reason FROM quarantine")
        assert reason == (
            "ValueError while decoding (topic 'stations/test/rg-01/telemetry'): "
            "a bug in the mapping"
        )


def test_dead_letter_counts_are_charged_to_what_was_in_flight() -> None:
    assert after_restart(["a", "b"], {"a": 1, "c": 2}) == {"a": 2, "b": 1, "c": 2}


def test_a_message_the_gateway_dies_on_is_set_aside_after_three_deaths(tmp_path: Path) -> None:
    """The marker, as three hard crashes on one message leave it (the process dies with
    the batch in flight; a new DeadLetters is the next start)."""
    marker = tmp_path / "station.db.inflight"
    poison = Message(TOPIC, report(7, crash=1), 1, 4, RX, 1)
    batch = [
        *msgs([report(s) for s in range(1, 4)]),
        poison,
        Message(TOPIC, report(9), 1, 5, RX, 1),
    ]
    d = DeadLetters(marker)
    d.start()
    d.begin([digest(m.topic, m.payload) for m in batch])  # the first death: all in flight
    for _ in range(2):  # two more deaths, each with the poison alone in flight
        d = DeadLetters(marker)
        d.start()
        assert d.count(digest(poison.topic, poison.payload)) >= 1
        d.begin([digest(poison.topic, poison.payload)])
    with station() as (pipe, source, _):
        pipe.dead_letters = DeadLetters(marker)
        pipe.dead_letters.start()
        # the neighbours were in flight at the first death: suspects, each alone, stored
        asyncio.run(pipe._handle(batch))
        assert source.acked == [1, 2, 3, 4, 5]  # in arrival order, the poison too
        assert len(query(pipe, "SELECT ts FROM readings")) == 4
        [(reason, payload)] = query(pipe, "SELECT reason, payload FROM quarantine")
        assert reason == (
            "dead letter: the gateway stopped 3 times while this message was being "
            "processed; set aside unprocessed"
        )
        assert payload == poison.payload
        assert pipe.dead_letters.crashes == {}  # all judged: the marker is clean again
    assert json.loads(marker.read_bytes()) == {"in_flight": [], "crashes": {}}
