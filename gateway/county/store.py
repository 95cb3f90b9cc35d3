"""The county's store: PostgreSQL through psycopg 3 (sync connections; the consumer runs
them on its own thread).

`migrate()` applies `schema.MIGRATIONS` (each in one transaction, under an advisory lock so
that two instances starting together do not race); `ensure_partitions()` makes the
monthly `readings_YYYYMM` partitions a batch needs (and the next month's) before it is
written. Every write is idempotent: readings `ON CONFLICT DO NOTHING` on (station, seq,
ts), ticket events on their ids, tickets, device health and station state only move
forward (a newer seq or time wins), so a message written twice is written once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gateway.county.config import KnownStation
from gateway.county.schema import MIGRATIONS

Conn = psycopg.Connection[tuple[Any, ...]]
# a station's report on a pushed plan stored, or why it is refused (plans.apply_plan_report)
PlanReport = Callable[[Conn, dict[str, Any]], "str | None"]

MIGRATE_LOCK = 190_001  # pg_advisory_xact_lock keys
PARTITION_LOCK = 190_002
QUARANTINE_BYTES = 65_536  # of a refused message's payload kept


@dataclass(frozen=True, slots=True)
class Refused:
    """A message the consumer did not store, and why."""

    subject: str
    station: str | None
    reason: str
    deliveries: int
    payload: bytes


@dataclass(slots=True)
class Batch:
    """What one fetch from the stream wrote: plain tuples, validated by the consumer."""

    # (station, seq, device, metric, ts_ms, value, flags)
    readings: list[tuple[str, int, str, str, int, float | None, int]] = field(default_factory=list)
    tickets: list[tuple[str, int, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    health: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    # (station, state body, received at ms)
    states: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    plans: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # station -> received at ms
    refused: list[Refused] = field(default_factory=list)

    def see(self, station: str, at_ms: int) -> None:
        self.seen[station] = max(self.seen.get(station, 0), at_ms)


@dataclass(frozen=True, slots=True)
class Written:
    readings: int  # new rows
    duplicates: int  # readings already stored (a resend)
    refused: int


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def month_of(ms: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return d.year, d.month


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


class CountyStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._partitions: set[tuple[int, int]] = set()

    def connect(self) -> Conn:
        conn: Conn = psycopg.connect(self.dsn, connect_timeout=5)
        return conn

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the database to the newest migration; return its number."""
        with self.connect() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            done = self.version(conn)
            for number, sql in enumerate(MIGRATIONS, start=1):
                if number <= done:
                    continue
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                    if self.version(conn) >= number:  # another instance was first
                        continue
                    conn.execute(sql)  # our own constant SQL
                    conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
            return self.version(conn)

    @staticmethod
    def version(conn: Conn) -> int:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def ensure_partitions(self, conn: Conn, months: Iterable[tuple[int, int]]) -> None:
        """The monthly partitions of readings for `months` (and the month after each)."""
        wanted = set()
        for y, m in months:
            wanted |= {(y, m), _next(y, m)}
        missing = sorted(wanted - self._partitions)
        if not missing:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            for y, m in missing:
                ny, nm = _next(y, m)
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS readings_{y:04d}{m:02d} PARTITION OF readings "
                    f"FOR VALUES FROM ('{y:04d}-{m:02d}-01 00:00+00') "
                    f"TO ('{ny:04d}-{nm:02d}-01 00:00+00')"
                )
        self._partitions |= set(missing)

    def sync_stations(self, conn: Conn, stations: Sequence[KnownStation]) -> None:
        """The stations county.toml knows: added, their group kept current."""
        with conn.transaction():
            for s in stations:
                conn.execute(
                    "INSERT INTO stations (id, name, grp) VALUES (%s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET grp = EXCLUDED.grp, "
                    "name = COALESCE(stations.name, EXCLUDED.name)",
                    (s.id, s.name, s.group),
                )

    # -- writes ---------------------------------------------------------------------------

    def write(self, conn: Conn, batch: Batch, plan_report: PlanReport) -> Written:
        """One transaction: everything of the batch, refused messages included.
        `plan_report` stores a station's report on a pushed plan, or says why not."""
        self.ensure_partitions(conn, {month_of(r[4]) for r in batch.readings})
        with conn.transaction():
            stored = self._readings(conn, batch.readings)
            # every station row this batch touches, locked first and in one order: two
            # instances writing batches of the same stations never deadlock
            for station, at in sorted(batch.seen.items()):
                conn.execute(
                    "UPDATE stations SET last_seen = GREATEST(last_seen, %s) WHERE id = %s",
                    (_ts(at), station),
                )
            for station, seq, ticket, event in batch.tickets:
                self._ticket(conn, station, seq, ticket, event)
            for station, seq, health in batch.health:
                self._health(conn, station, seq, health)
            for station, body, received in sorted(batch.states, key=lambda x: x[0]):
                self._state(conn, station, body, received)
            refused = list(batch.refused)
            for station, body in batch.plans:
                if (why := plan_report(conn, body)) is not None:
                    raw = json.dumps(body, ensure_ascii=False).encode()
                    refused.append(Refused(f"county.{station}.plan", station, why, 1, raw))
            self.refuse(conn, refused)
        return Written(stored, len(batch.readings) - stored, len(refused))

    @staticmethod
    def refuse(conn: Conn, refused: Sequence[Refused]) -> None:
        for r in refused:
            conn.execute(
                "INSERT INTO quarantine (subject, station, reason, deliveries, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                (r.subject, r.station, r.reason, r.deliveries, r.payload[:QUARANTINE_BYTES]),
            )

    @staticmethod
    def _readings(
        conn: Conn, rows: Sequence[tuple[str, int, str, str, int, float | None, int]]
    ) -> int:
        if not rows:
            return 0
        cols = list(zip(*rows, strict=True))
        cur = conn.execute(
            "INSERT INTO readings (station, seq, device, metric, ts, value, flags) "
            "SELECT s, q, d, m, to_timestamp(t / 1000.0), v, f FROM unnest("
            "%s::text[], %s::bigint[], %s::text[], %s::text[], %s::bigint[], "
            "%s::float8[], %s::int[]) AS u(s, q, d, m, t, v, f) ON CONFLICT DO NOTHING",
            [list(c) for c in cols],
        )
        return max(0, cur.rowcount)

    @staticmethod
    def _ticket(conn: Conn, station: str, seq: int, t: dict[str, Any], e: dict[str, Any]) -> None:
        if t:
            conn.execute(
                "INSERT INTO tickets (station, id, kind, level, state, title, device, metric, "
                "point, rule, value, opened_at, updated_at, seq) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (station, id) DO UPDATE SET kind = EXCLUDED.kind, "
                "level = EXCLUDED.level, state = EXCLUDED.state, title = EXCLUDED.title, "
                "device = EXCLUDED.device, metric = EXCLUDED.metric, point = EXCLUDED.point, "
                "rule = EXCLUDED.rule, value = EXCLUDED.value, "
                "opened_at = EXCLUDED.opened_at, updated_at = EXCLUDED.updated_at, "
                "seq = EXCLUDED.seq WHERE tickets.seq < EXCLUDED.seq",
                (
                    station,
                    t["id"],
                    t["kind"],
                    t.get("level"),
                    t["state"],
                    t.get("title"),
                    t.get("device"),
                    t.get("metric"),
                    t.get("point"),
                    t.get("rule"),
                    t.get("value"),
                    _ts(t.get("opened_at")),
                    _ts(t.get("updated_at")),
                    seq,
                ),
            )
        conn.execute(
            "INSERT INTO ticket_events (station, id, ticket_id, seq, at, kind, actor, level, "
            "value, note, reason, role, channel, body) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (station, id) DO NOTHING",
            (
                station,
                e["id"],
                t["id"],
                seq,
                _ts(e["at"]),
                e["kind"],
                e.get("actor"),
                e.get("level"),
                e.get("value"),
                e.get("note"),
                e.get("reason"),
                e.get("role"),
                e.get("channel"),
                Jsonb(e),
            ),
        )

    @staticmethod
    def _health(conn: Conn, station: str, seq: int, h: dict[str, Any]) -> None:
        online = h.get("online")
        conn.execute(
            "INSERT INTO device_health (station, device, online, at, body, seq) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (station, device) DO UPDATE SET "
            "online = COALESCE(EXCLUDED.online, device_health.online), "
            "at = COALESCE(EXCLUDED.at, device_health.at), "
            "body = device_health.body || EXCLUDED.body, seq = EXCLUDED.seq "
            "WHERE device_health.seq < EXCLUDED.seq",
            (
                station,
                h["device"],
                online if isinstance(online, bool) else None,
                _ts(h.get("at")),
                Jsonb(h),
                seq,
            ),
        )

    @staticmethod
    def _state(conn: Conn, station: str, b: dict[str, Any], received_ms: int) -> None:
        plan = b.get("plan") or {}
        clock = b.get("clock") or {}
        offset = clock["ms"] - received_ms if isinstance(clock.get("ms"), int) else None
        conn.execute(
            "UPDATE stations SET name = %s, tz = %s, lon = %s, lat = %s, version = %s, "
            "state = %s, state_at = %s, clock_offset_ms = %s, backlog = %s, "
            "disk_free_mb = %s, plan_version = %s, plan_hash = %s, plan_errors = %s "
            "WHERE id = %s AND (state_at IS NULL OR state_at <= %s)",
            (
                b.get("name"),
                b.get("tz"),
                b.get("lon"),
                b.get("lat"),
                b.get("version"),
                Jsonb(b),
                _ts(b["at"]),
                offset,
                b.get("backlog"),
                b.get("disk_free_mb"),
                plan.get("version"),
                plan.get("hash"),
                Jsonb(plan.get("errors") or []),
                station,
                _ts(b["at"]),
            ),
        )

    # -- reads (health, tests, bench) ------------------------------------------------------

    @staticmethod
    def counts(conn: Conn) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("readings", "tickets", "ticket_events", "device_health", "quarantine"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            out[table] = int(row[0]) if row else 0
        return out
