"""The uplinks' outbox: filled in the ingest commit and by triggers, cursors, pruning, the
disk budget; the MQTT message grouping and the line protocol of what goes upstream."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.ingest.commit import Ingestor
from gateway.ingest.health import Delta, write_deltas
from gateway.tickets.model import TicketKind
from gateway.tickets.store import StationStore
from gateway.uplinks import outbox
from gateway.uplinks.line_protocol import LineEncoder, Place
from gateway.uplinks.mqtt import messages
from gateway.uplinks.outbox import Row
from rules.evaluator import RuleSet

T0 = 1_780_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> StationStore:
    s = StationStore(tmp_path / "s.db")
    s.register_devices(["rg-01", "wl-01"])
    return s


def _on(store: StationStore, *names: str) -> None:
    with store.transaction():
        outbox.configure(store.conn, names)


def _batch(n: int, start: int = 0) -> Batch:
    return Batch(readings=[Reading("rg-01", "rain_mm", T0 + i, float(i)) for i in range(start, n)])


def test_nothing_is_queued_while_no_uplink_is_configured(store: StationStore) -> None:
    Ingestor(store, RuleSet([])).commit(_batch(10), now=T0)
    assert outbox.status(store.conn).rows == 0


def test_new_readings_enter_in_the_commit_and_duplicates_do_not(store: StationStore) -> None:
    _on(store, "mqtt")
    ing = Ingestor(store, RuleSet([]))
    ing.commit(_batch(10), now=T0)
    ing.commit(_batch(15, start=5), now=T0)  # 5 repeats, 5 new
    rows = outbox.fetch(store.conn, 0, 100)
    assert [r.seq for r in rows] == list(range(1, 16))
    assert [(r.device, r.metric, r.ts, r.value) for r in rows] == [
        ("rg-01", "rain_mm", T0 + i, float(i)) for i in range(15)
    ]


def test_a_failed_commit_leaves_nothing_in_the_outbox(store: StationStore) -> None:
    _on(store, "mqtt")
    with pytest.raises(RuntimeError), store.transaction():
        outbox.add_readings(store.conn, _batch(3).readings)
        raise RuntimeError("crash inside the commit")
    assert outbox.fetch(store.conn, 0, 10) == []


def test_ticket_events_and_health_changes_enter_by_trigger(store: StationStore) -> None:
    _on(store, "mqtt")
    with store.transaction():
        tid = store.open_ticket(
            kind=TicketKind.HAZARD,
            level=Level.YELLOW,
            title="t",
            device="rg-01",
            metric="rain_mm",
            point="p1",
            rule="r1",
            value=5.5,
            reason="why",
            actor="rule:r1",
            at=T0,
        )
        store.device_status("rg-01", True, T0 + 1)
        store.device_status("rg-01", True, T0 + 2)  # no change: no row
    write_deltas(store, {"wl-01": Delta(values={"battery": 80.0}, at=T0 + 3)})
    write_deltas(store, {"wl-01": Delta(values={"battery": 80.0}, at=T0 + 4)})  # same
    rows = outbox.fetch(store.conn, 0, 10)
    assert [r.kind for r in rows] == ["e", "h", "h"]
    event = rows[0].json()
    assert event["ticket"]["id"] == tid  # type: ignore[index]
    assert event["ticket"]["level"] == "yellow"  # type: ignore[index]
    assert event["event"]["kind"] == "opened"  # type: ignore[index]
    assert rows[1].json() == {"device": "rg-01", "online": True, "at": T0 + 1}
    assert rows[2].json()["battery"] == 80.0


def test_prune_deletes_only_what_every_uplink_confirmed(store: StationStore) -> None:
    _on(store, "mqtt", "influx")
    ing = Ingestor(store, RuleSet([]))
    for start in range(0, 10, 2):  # five commits: rows of seq 1-2, 3-4, …
        ing.commit(_batch(start + 2, start), now=T0)
    with store.transaction():
        outbox.confirm(store.conn, "mqtt", 8)
        outbox.confirm(store.conn, "influx", 3)
        outbox.confirm(store.conn, "influx", 2)  # never back
        assert outbox.prune(store.conn) == 1  # the row of 1-2; 3-4 is half confirmed
    assert outbox.fetch(store.conn, 0, 100)[0].seq == 3
    assert [r.seq for r in outbox.fetch(store.conn, 3, 4)] == [4, 5, 6, 7]  # from mid-row
    assert [r.value for r in outbox.fetch(store.conn, 8, 100)] == [8.0, 9.0]
    assert outbox.cursor(store.conn, "influx") == 3
    assert outbox.status(store.conn).rows == 8


def test_a_new_uplink_starts_at_the_newest_row_and_seq_is_never_reused(store: StationStore) -> None:
    _on(store, "mqtt")
    ing = Ingestor(store, RuleSet([]))
    ing.commit(_batch(5), now=T0)
    with store.transaction():
        outbox.confirm(store.conn, "mqtt", 5)
        outbox.prune(store.conn)
        outbox.configure(store.conn, ["mqtt", "influx"])
    assert outbox.cursor(store.conn, "influx") == 5
    ing.commit(_batch(6, start=5), now=T0)
    assert [r.seq for r in outbox.fetch(store.conn, 0, 10)] == [6]  # empty table, seq goes on
    with store.transaction():
        outbox.configure(store.conn, [])
    assert outbox.cursors(store.conn) == ()
    assert outbox.status(store.conn).rows == 0


def test_the_budget_drops_oldest_readings_counts_and_logs_them(
    store: StationStore, caplog: pytest.LogCaptureFixture
) -> None:
    _on(store, "mqtt", "influx")
    ing = Ingestor(store, RuleSet([]))
    for start in range(0, 1000, 100):
        ing.commit(_batch(start + 100, start), now=T0)
    with store.transaction():
        store.open_ticket(
            kind=TicketKind.HAZARD,
            level=Level.BLUE,
            title="t",
            device=None,
            metric=None,
            point=None,
            rule=None,
            value=None,
            reason=None,
            actor="x",
            at=T0,
        )
        outbox.confirm(store.conn, "mqtt", 100)
    st = outbox.status(store.conn)
    budget = st.est_bytes // 2
    with caplog.at_level(logging.ERROR, "stationgw.outbox"), store.transaction():
        gone = outbox.enforce_budget(store.conn, budget, T0 + 9)
    after = outbox.status(store.conn)
    assert 500 <= gone < 1000 and gone % 100 == 0 and after.est_bytes <= budget
    cur = {c.name: c for c in after.cursors}
    assert cur["influx"].dropped == gone  # had confirmed nothing
    assert cur["mqtt"].dropped == gone - 100  # its first 100 were confirmed already
    assert cur["mqtt"].dropped_at == T0 + 9
    assert [r.kind for r in outbox.fetch(store.conn, 0, 2000)].count("e") == 1  # kept
    assert "OUTBOX FULL" in caplog.text and "influx" in caplog.text


def _reading(seq: int, value: float = 1.5, flags: int = 0) -> Row:
    return Row(seq, "r", "rg 01", "rain_mm", T0 + seq, value, flags, None)


def test_messages_batch_consecutive_readings_and_keep_order() -> None:
    event = Row(4, "e", None, None, T0, None, None, json.dumps({"ticket": {}, "event": {}}))
    rows = [_reading(1), _reading(2), _reading(3), event, _reading(5), _reading(7)]
    out = list(messages(rows, "county/s", "s", batch=2))
    assert [(m.topic, m.last) for m in out] == [
        ("county/s/readings", 2),
        ("county/s/readings", 3),
        ("county/s/tickets", 4),
        ("county/s/readings", 5),  # 6 is missing (dropped): a new message starts at 7
        ("county/s/readings", 7),
    ]
    first = json.loads(out[0].payload)
    assert first == {
        "station": "s",
        "seq": 1,
        "last": 2,
        "readings": [["rg 01", "rain_mm", T0 + 1, 1.5, 0], ["rg 01", "rain_mm", T0 + 2, 1.5, 0]],
    }


def test_line_protocol_escapes_tags_leaves_out_empty_ones_and_skips_nan() -> None:
    enc = LineEncoder("st a", {"rg 01": Place("p,1", "v=1")}, {"p,1": "v=1"})
    event = Row(
        9,
        "e",
        None,
        None,
        T0,
        None,
        None,
        json.dumps(
            {
                "ticket": {
                    "id": 7,
                    "kind": "hazard",
                    "level": "red",
                    "point": None,
                    "device": "rg 01",
                },
                "event": {"kind": "raised", "value": 3},
            }
        ),
    )
    lines = enc.lines([_reading(1), _reading(2, 2.0, 4), _reading(3, float("nan")), event])
    assert lines == [
        f"reading,device=rg\\ 01,metric=rain_mm,point=p\\,1,station=st\\ a,village=v\\=1 value=1.5 {T0 + 1}",
        f"reading,device=rg\\ 01,metric=rain_mm,point=p\\,1,station=st\\ a,village=v\\=1 value=2.0,flags=4i {T0 + 2}",
        f"ticket_event,device=rg\\ 01,event=raised,kind=hazard,level=red,point=p\\,1,station=st\\ a,village=v\\=1 ticket_id=7i,value=3.0 {T0}",
    ]
    assert enc.skipped == 1


def test_packed_readings_come_back_exactly() -> None:
    rs = [
        Reading("rg-01", "rain_mm", T0, 0.1),
        Reading("下溪-02", "level_m", -5, -1e300, 7),
        Reading("rg-01", "rain_mm", 2**62, float("inf"), 0),
        Reading("rg-01", "battery_v", T0 + 1, 3.3000000000000003, 1),
    ]
    assert outbox.unpack_readings(outbox.pack_readings(rs)) == [
        (r.device, r.metric, r.ts, r.value, r.flags) for r in rs
    ]
    assert len(outbox.pack_readings(rs * 500)) < 25 * 2000 + 100  # 24 bytes a reading
    with pytest.raises(ValueError, match="newer"):
        outbox.unpack_readings(b"\x02" + outbox.pack_readings(rs)[1:])
