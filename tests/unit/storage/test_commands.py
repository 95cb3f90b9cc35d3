"""The device command queue: states stepped with a fake clock, kept across a restart,
every transition audited (who, what, the answer)."""

from __future__ import annotations

from pathlib import Path

from gateway.storage import commands as q
from gateway.storage.store import Store

T0 = 1_782_858_600_000
MIN = 60_000


def queue(store: Store, name: str = "clock.set", **kw: int) -> q.QueuedCommand:
    return q.enqueue(
        store,
        T0,
        device="hs-01",
        name=name,
        args={},
        user="tech1",
        ttl_ms=kw.get("ttl_ms", 60 * MIN),
        timeout_ms=kw.get("timeout_ms", 2 * MIN),
        max_attempts=kw.get("max_attempts", 2),
        source="cli",
    )


def audit(store: Store) -> list[tuple[str, str | None, str]]:
    return store.conn.execute("SELECT action, user, target FROM audit ORDER BY id").fetchall()


def test_queued_sent_answered_and_kept_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    store = Store(db)
    c = queue(store)
    assert c.state == "queued" and c.created_by == "tech1"
    store.close()
    store = Store(db)  # a restart: the queue is in SQLite
    assert [x.id for x in q.due(store, "hs-01", T0 + MIN)] == [c.id]
    assert q.due(store, "other", T0 + MIN) == []
    q.mark_sent(store, c.id, T0 + MIN)
    assert q.due(store, "hs-01", T0 + 2 * MIN) == []  # answer not yet overdue
    done = q.answered(store, "hs-01", "clock.set", T0 + 2 * MIN, "遥测站时钟: 2026-07-01 06:32:00")
    assert done is not None and done.state == "answered" and done.answer.startswith("遥测站时钟")
    assert q.answered(store, "hs-01", "clock.set", T0 + 3 * MIN, "again") is None
    assert audit(store) == [
        ("command.queued", "tech1", "hs-01"),
        ("command.sent", None, "hs-01"),
        ("command.answered", None, "hs-01"),
    ]
    store.close()


def test_unanswered_is_sent_again_then_failed(tmp_path: Path) -> None:
    store = Store(tmp_path / "station.db")
    c = queue(store, timeout_ms=2 * MIN, max_attempts=2)
    q.mark_sent(store, c.id, T0)
    assert [x.id for x in q.due(store, "hs-01", T0 + 2 * MIN)] == [c.id]  # timeout: again
    q.mark_sent(store, c.id, T0 + 2 * MIN)
    assert q.due(store, "hs-01", T0 + 4 * MIN) == []  # no attempt left: failed
    got = q.get(store, c.id)
    assert got is not None and got.state == "failed" and got.attempts == 2
    assert got.answer == "2 次发送均未应答"
    assert [a for a, _, _ in audit(store)][-1] == "command.failed"
    store.close()


def test_a_sleeping_device_past_the_expiry_gets_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "station.db")
    c = queue(store, ttl_ms=30 * MIN)
    assert q.due(store, "hs-01", T0 + 30 * MIN) == []
    got = q.get(store, c.id)
    assert got is not None and got.state == "expired"
    assert [x.state for x in q.listing(store, "hs-01")] == ["expired"]
    store.close()
