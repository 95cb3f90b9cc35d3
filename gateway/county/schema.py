"""The county's PostgreSQL schema: numbered migrations, as for the station's SQLite.

`schema_version` records how far a database is; each migration runs in one transaction.
Readings are partitioned by month (`readings_YYYYMM`, made ahead by `ensure_partitions`);
(station, seq, ts) is their key, so a message stored twice is stored once (`ON CONFLICT
DO NOTHING`), and (station, device, metric, ts) keeps a time-range query on one series an
index range scan within the months it touches. Times are `timestamptz` (UTC stored).
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: stations, readings, tickets, health, what the consumer refused
    """
    CREATE TABLE stations (
        id text PRIMARY KEY,
        name text,                      -- the station's own name (from its state message)
        grp text,                       -- the county's group of stations (plans by group)
        tz text,
        lon double precision,
        lat double precision,
        version text,                   -- gateway version
        state jsonb,                    -- the last state message as sent
        state_at timestamptz,           -- its "at"
        last_seen timestamptz,          -- when the county last received anything from it
        clock_offset_ms bigint,         -- station clock minus county clock at receipt
        backlog bigint,
        disk_free_mb double precision,
        plan_version text,              -- the plan the station says it runs
        plan_hash text,
        plan_errors jsonb,
        plan_at timestamptz
    );
    CREATE TABLE readings (
        station text NOT NULL,
        seq bigint NOT NULL,
        device text NOT NULL,
        metric text NOT NULL,
        ts timestamptz NOT NULL,
        value double precision,
        flags integer NOT NULL DEFAULT 0,
        stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (station, seq, ts)
    ) PARTITION BY RANGE (ts);
    CREATE INDEX readings_series ON readings (station, device, metric, ts);
    CREATE TABLE tickets (
        station text NOT NULL,
        id bigint NOT NULL,             -- the station's ticket id
        kind text NOT NULL,
        level text,                     -- blue, yellow, orange, red; NULL for device faults
        state text NOT NULL,
        title text,
        device text,
        metric text,
        point text,
        rule text,
        value double precision,
        opened_at timestamptz,
        updated_at timestamptz,
        seq bigint NOT NULL,            -- the outbox seq of the newest event applied
        PRIMARY KEY (station, id)
    );
    CREATE INDEX tickets_open ON tickets (state, level);
    CREATE TABLE ticket_events (
        station text NOT NULL,
        id bigint NOT NULL,             -- the station's event id
        ticket_id bigint NOT NULL,
        seq bigint NOT NULL,
        at timestamptz NOT NULL,
        kind text NOT NULL,
        actor text,
        level text,
        value double precision,
        note text,
        reason text,
        role text,
        channel text,
        body jsonb NOT NULL,            -- the event as sent
        PRIMARY KEY (station, id)
    );
    CREATE INDEX ticket_events_by_ticket ON ticket_events (station, ticket_id, at);
    CREATE TABLE device_health (
        station text NOT NULL,
        device text NOT NULL,
        online boolean,
        at timestamptz,
        body jsonb NOT NULL,            -- the newest health message's "health" merged
        seq bigint NOT NULL,
        PRIMARY KEY (station, device)
    );
    CREATE TABLE quarantine (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        subject text NOT NULL,
        station text,
        reason text NOT NULL,           -- what was wrong and where (key path, byte offset)
        deliveries integer NOT NULL DEFAULT 1,
        payload bytea NOT NULL          -- the first 64 KiB as received
    );
    """,
    # 2: the county's own tickets (escalation), its calls, and the plans it pushed
    """
    CREATE TABLE county_tickets (
        id bigserial PRIMARY KEY,
        station text NOT NULL,
        station_ticket bigint NOT NULL, -- the township's warning this escalates
        level text NOT NULL,
        state text NOT NULL,            -- open, acked, closed
        opened_at timestamptz NOT NULL,
        reason text NOT NULL,           -- e.g. not answered within the county's deadline
        acked_by text,
        acked_at timestamptz,
        closed_at timestamptz,
        UNIQUE (station, station_ticket)
    );
    CREATE TABLE county_calls (
        id bigserial PRIMARY KEY,
        ticket_id bigint NOT NULL REFERENCES county_tickets(id),
        at timestamptz NOT NULL,
        person text NOT NULL,           -- county.toml [[people]] id
        role text NOT NULL,             -- duty, leader
        channel text NOT NULL,          -- sms, voice, robot …
        target text,                    -- phone or robot id (migration 2 is the county room's)
        outcome text,                   -- pending, sending, sent, answered, failed, stopped
        detail text
    );
    CREATE TABLE plans (
        version text PRIMARY KEY,
        target text NOT NULL,           -- all, group.<g>, station.<st>
        hash text NOT NULL,
        body jsonb NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX county_tickets_open ON county_tickets (state, opened_at);
    CREATE INDEX county_calls_by_ticket ON county_calls (ticket_id, at);
    -- the county page's users, sessions and audit log (gateway.county.users): the roles
    -- and password hashes of the station's (gateway.auth.policy)
    CREATE TABLE county_users (
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        role text NOT NULL,             -- viewer, duty_officer, technician, leader, admin
        password text NOT NULL,         -- scrypt$n$r$p$salt$digest
        person text,                    -- county.toml [[people]] id this user acts as
        failures integer NOT NULL DEFAULT 0,
        last_failure bigint NOT NULL DEFAULT 0,   -- UTC ms
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE county_sessions (
        id text PRIMARY KEY,            -- sha256 of the token (the token is never stored)
        user_id bigint NOT NULL REFERENCES county_users(id) ON DELETE CASCADE,
        csrf text NOT NULL,
        created_at bigint NOT NULL,     -- UTC ms
        expires_at bigint NOT NULL
    );
    CREATE TABLE county_audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        "user" text,
        role text,
        action text NOT NULL,
        target text,
        detail jsonb,
        ok boolean NOT NULL DEFAULT true,
        source text NOT NULL
    );
    -- the key-value revision the plan was published as (gateway.county.plans)
    ALTER TABLE plans ADD COLUMN kv_revision bigint;
    """,
]
