"""Numbered schema migrations; `PRAGMA user_version` records how far a database is."""

from __future__ import annotations

import sqlite3

from gateway.core.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: the spine — series, readings, devices, quarantine, rule state, tickets and events
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        metric TEXT NOT NULL,
        UNIQUE (device, metric)
    );
    CREATE TABLE readings (
        series_id INTEGER NOT NULL REFERENCES series(id),
        ts INTEGER NOT NULL,            -- device time, UTC milliseconds
        value REAL NOT NULL,
        flags INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        online INTEGER NOT NULL DEFAULT 0,
        status_at INTEGER,              -- gateway time of the last status message
        last_seen INTEGER,              -- gateway time of the last telemetry
        last_seq INTEGER
    );
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE TABLE rule_state (
        rule TEXT NOT NULL,
        device TEXT NOT NULL,
        metric TEXT NOT NULL,
        level INTEGER,
        last_ts INTEGER NOT NULL,
        PRIMARY KEY (rule, device, metric)
    ) WITHOUT ROWID;
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        level INTEGER NOT NULL,
        state TEXT NOT NULL,
        title TEXT NOT NULL,
        device TEXT,
        metric TEXT,
        rule TEXT,
        value REAL,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        acknowledged_at INTEGER,
        acknowledged_by TEXT
    );
    CREATE UNIQUE INDEX tickets_one_open_per_series ON tickets (rule, device, metric)
        WHERE state NOT IN ('closed', 'dismissed');
    CREATE INDEX tickets_by_state ON tickets (state, opened_at);
    CREATE TABLE ticket_events (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id),
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        level INTEGER,
        value REAL,
        note TEXT
    );
    CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);
    """,
    # 2: the rules engine — rule state as JSON per kind; tickets for device faults (no
    # colour level) and for monitoring points (compound rules)
    """
    CREATE TABLE rule_state_2 (
        rule TEXT NOT NULL,
        device TEXT NOT NULL,
        metric TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (rule, device, metric)
    ) WITHOUT ROWID;
    INSERT INTO rule_state_2
        SELECT rule, device, metric, json_object('t', 'level', 'level', level, 'raw', level,
                                                 'last_ts', last_ts)
        FROM rule_state;
    DROP TABLE rule_state;
    ALTER TABLE rule_state_2 RENAME TO rule_state;
    CREATE TABLE tickets_2 (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        level INTEGER,
        state TEXT NOT NULL,
        title TEXT NOT NULL,
        device TEXT,
        metric TEXT,
        point TEXT,
        rule TEXT,
        value REAL,
        reason TEXT,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        acknowledged_at INTEGER,
        acknowledged_by TEXT
    );
    INSERT INTO tickets_2 (id, kind, level, state, title, device, metric, rule, value,
                           opened_at, updated_at, acknowledged_at, acknowledged_by)
        SELECT id, kind, level, state, title, device, metric, rule, value,
               opened_at, updated_at, acknowledged_at, acknowledged_by FROM tickets;
    DROP TABLE tickets;
    ALTER TABLE tickets_2 RENAME TO tickets;
    CREATE UNIQUE INDEX tickets_one_open_per_series
        ON tickets (rule, ifnull(device, ''), ifnull(metric, ''), ifnull(point, ''))
        WHERE state NOT IN ('closed', 'dismissed');
    CREATE INDEX tickets_by_state ON tickets (state, opened_at);
    ALTER TABLE ticket_events ADD COLUMN reason TEXT;
    ALTER TABLE ticket_events ADD COLUMN ts INTEGER;  -- data time of what caused it
    """,
    # 3: device health reported by field drivers (supply, signal, firmware, error counters)
    """
    CREATE TABLE device_health (
        device TEXT PRIMARY KEY,
        battery REAL,                   -- battery charge, % (as the device reports it)
        supply_v REAL,                  -- supply / battery voltage
        solar_v REAL,
        signal REAL,                    -- radio signal as the device reports it
        temperature REAL,               -- the device's own temperature, °C
        firmware TEXT,
        crc_errors INTEGER NOT NULL DEFAULT 0,
        timeouts INTEGER NOT NULL DEFAULT 0,
        malformed INTEGER NOT NULL DEFAULT 0,
        offline_reason TEXT,
        updated_at INTEGER
    ) WITHOUT ROWID;
    -- hazards reported by people or panels (handheld, fire-alarm panel): their own
    -- reference (record id, alarm key) -> the ticket it opened, so a resend opens none
    CREATE TABLE hazard_refs (
        ref TEXT PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id)
    ) WITHOUT ROWID;
    -- patrol records (巡查记录) from handheld recorders, stored once per recorder and id
    CREATE TABLE patrol_records (
        device TEXT NOT NULL,
        record_id TEXT NOT NULL,
        inspector TEXT NOT NULL,
        point TEXT,
        at INTEGER NOT NULL,            -- the recorder's time, UTC ms
        checklist TEXT,
        items TEXT NOT NULL,            -- JSON list of {item, result, note}
        text TEXT,
        photo TEXT,
        flags TEXT,                     -- JSON list of what did not match the configuration
        ticket_id INTEGER REFERENCES tickets(id),
        received_at INTEGER NOT NULL,
        PRIMARY KEY (device, record_id)
    ) WITHOUT ROWID;
    CREATE INDEX patrol_records_by_time ON patrol_records (at);
    """,
    # 4: the warning loop — lifecycle steps by role, stage deadlines,
    # warnings with their call-and-escalation state, calls, channel deliveries (an
    # outbox), shift handovers.
    """
    ALTER TABLE tickets ADD COLUMN due_at INTEGER;       -- deadline of the next step
    ALTER TABLE tickets ADD COLUMN code TEXT;            -- short code a reply carries
    ALTER TABLE tickets ADD COLUMN suggestion TEXT;      -- e.g. lower:blue, lift
    ALTER TABLE ticket_events ADD COLUMN role TEXT;
    ALTER TABLE ticket_events ADD COLUMN attachments TEXT;  -- JSON list of references
    ALTER TABLE ticket_events ADD COLUMN channel TEXT;
    CREATE INDEX tickets_by_code ON tickets (code) WHERE code IS NOT NULL;
    CREATE UNIQUE INDEX tickets_one_open_warning_per_point ON tickets (point)
        WHERE kind = 'warning' AND state NOT IN ('closed', 'dismissed', 'lifted');
    CREATE TABLE warning_state (
        ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
        level INTEGER NOT NULL,
        round INTEGER NOT NULL,         -- a new round starts when the warning is raised
        step INTEGER NOT NULL,          -- grid step called last (0 = the point)
        due_at INTEGER,                 -- acknowledgement deadline; NULL when none pending
        acked_at INTEGER,
        acked_by TEXT,
        acked_via TEXT
    );
    CREATE INDEX warning_state_due ON warning_state (due_at) WHERE due_at IS NOT NULL;
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id),
        round INTEGER NOT NULL,
        step INTEGER NOT NULL,
        grid TEXT NOT NULL,             -- point:x, village:y, township, county, duty
        person TEXT NOT NULL,
        name TEXT NOT NULL,
        phone TEXT,
        why TEXT NOT NULL,              -- issued, raised, escalated, duty, deputy
        called_at INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        outcome TEXT NOT NULL DEFAULT 'pending',  -- acknowledged, escalated, answered, lifted
        acked_at INTEGER,
        acked_via TEXT
    );
    CREATE INDEX calls_by_ticket ON calls (ticket_id, id);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id),
        call_id INTEGER REFERENCES calls(id),
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        body TEXT NOT NULL,             -- JSON handed to the channel
        status TEXT NOT NULL DEFAULT 'pending',  -- pending, sent, failed
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
    CREATE TABLE handovers (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        from_person TEXT NOT NULL,
        to_person TEXT NOT NULL,
        note TEXT,
        open_items TEXT NOT NULL        -- JSON: the open tickets and warnings at handover
    );
    """,
    # 5: the uplinks' outbox — what goes to the county, in commit order. Every reading,
    # ticket event and health change has its own sequence number (seq); a row holds the
    # readings of one commit (seq .. seq + n - 1) or one event or health change. Readings
    # are added by the ingest commit, ticket events and device health changes by these
    # triggers, in the same transaction as the row they carry; nothing while no uplink is
    # configured (no cursor row). Each uplink's cursor: the last seq the far side confirmed.
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,        -- the first seq the row carries
        n INTEGER NOT NULL,             -- how many it carries (readings of a commit; else 1)
        kind TEXT NOT NULL,             -- r = readings, e = ticket event, h = device health
        body BLOB NOT NULL              -- readings: outbox.pack_readings; else JSON text
    );
    CREATE TABLE outbox_seq (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        next INTEGER NOT NULL           -- the next seq; never goes back, even when emptied
    );
    INSERT INTO outbox_seq (id, next) VALUES (1, 1);
    CREATE TABLE uplink_cursors (
        name TEXT PRIMARY KEY,          -- mqtt, influx
        confirmed INTEGER NOT NULL,     -- every seq up to here is confirmed by the far side
        dropped INTEGER NOT NULL DEFAULT 0,  -- readings lost to the disk budget before sending
        dropped_at INTEGER
    ) WITHOUT ROWID;
    CREATE TRIGGER outbox_ticket_event AFTER INSERT ON ticket_events
    WHEN EXISTS (SELECT 1 FROM uplink_cursors)
    BEGIN
        INSERT INTO outbox (seq, n, kind, body)
        SELECT (SELECT next FROM outbox_seq), 1, 'e', json_object(
            'ticket', json_object(
                'id', t.id, 'kind', t.kind,
                'level', CASE t.level WHEN 1 THEN 'blue' WHEN 2 THEN 'yellow'
                         WHEN 3 THEN 'orange' WHEN 4 THEN 'red' END,
                'state', t.state, 'title', t.title, 'device', t.device, 'metric', t.metric,
                'point', t.point, 'rule', t.rule, 'value', t.value,
                'opened_at', t.opened_at, 'updated_at', t.updated_at),
            'event', json_object(
                'id', new.id, 'at', new.at, 'kind', new.kind, 'actor', new.actor,
                'level', CASE new.level WHEN 1 THEN 'blue' WHEN 2 THEN 'yellow'
                         WHEN 3 THEN 'orange' WHEN 4 THEN 'red' END,
                'value', new.value, 'note', new.note, 'reason', new.reason, 'ts', new.ts,
                'role', new.role, 'channel', new.channel))
        FROM tickets t WHERE t.id = new.ticket_id;
        UPDATE outbox_seq SET next = next + 1
        WHERE EXISTS (SELECT 1 FROM outbox WHERE seq = outbox_seq.next);
    END;
    CREATE TRIGGER outbox_device_online AFTER UPDATE OF online ON devices
    WHEN old.online IS NOT new.online AND EXISTS (SELECT 1 FROM uplink_cursors)
    BEGIN
        INSERT INTO outbox (seq, n, kind, body) VALUES ((SELECT next FROM outbox_seq), 1, 'h',
            json_object('device', new.id, 'online', json(CASE new.online WHEN 1 THEN 'true'
                        ELSE 'false' END), 'at', new.status_at));
        UPDATE outbox_seq SET next = next + 1;
    END;
    CREATE TRIGGER outbox_device_health AFTER UPDATE ON device_health
    WHEN EXISTS (SELECT 1 FROM uplink_cursors) AND (
        old.battery IS NOT new.battery OR old.supply_v IS NOT new.supply_v
        OR old.solar_v IS NOT new.solar_v OR old.signal IS NOT new.signal
        OR old.temperature IS NOT new.temperature OR old.firmware IS NOT new.firmware
        OR old.crc_errors IS NOT new.crc_errors OR old.timeouts IS NOT new.timeouts
        OR old.malformed IS NOT new.malformed OR old.offline_reason IS NOT new.offline_reason)
    BEGIN
        INSERT INTO outbox (seq, n, kind, body) VALUES ((SELECT next FROM outbox_seq), 1, 'h',
            json_object('device', new.device, 'at', new.updated_at, 'battery', new.battery,
                'supply_v', new.supply_v, 'solar_v', new.solar_v, 'signal', new.signal,
                'temperature', new.temperature, 'firmware', new.firmware,
                'errors', json_object('crc', new.crc_errors, 'timeouts', new.timeouts,
                                      'malformed', new.malformed),
                'offline_reason', new.offline_reason));
        UPDATE outbox_seq SET next = next + 1;
    END;
    """,
    # 6: the embedded time-series store — compressed chunks of older readings (one per
    # series per UTC day, gateway/storage/chunks.py), rollups per 1 min / 1 h / 1 day maintained as
    # readings commit, and what the storage jobs last did
    """
    CREATE TABLE chunks (
        series_id INTEGER NOT NULL REFERENCES series(id),
        day INTEGER NOT NULL,           -- UTC day: ts // 86400000
        first_ts INTEGER NOT NULL,
        last_ts INTEGER NOT NULL,
        count INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (series_id, day)
    ) WITHOUT ROWID;
    CREATE TABLE rollups (
        series_id INTEGER NOT NULL REFERENCES series(id),
        res INTEGER NOT NULL,           -- bucket width, ms: 60000, 3600000, 86400000
        bucket INTEGER NOT NULL,        -- bucket start, UTC ms
        count INTEGER NOT NULL,
        sum REAL NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        PRIMARY KEY (series_id, res, bucket)
    ) WITHOUT ROWID;
    -- 1-minute rollups older than the hot window, one compressed chunk per series per day
    -- (gateway/storage/chunks.py table form: bucket starts; count, sum, min, max columns)
    CREATE TABLE rollup_chunks (
        series_id INTEGER NOT NULL REFERENCES series(id),
        day INTEGER NOT NULL,           -- UTC day: bucket // 86400000
        data BLOB NOT NULL,
        PRIMARY KEY (series_id, day)
    ) WITHOUT ROWID;
    CREATE TABLE storage_state (
        key TEXT PRIMARY KEY,           -- chunk_gen, last_compaction, guard, ...
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO storage_state (key, value) VALUES ('chunk_gen', '0');
    -- rollups of the readings already stored (good readings only, as ingest keeps them)
    INSERT INTO rollups (series_id, res, bucket, count, sum, min, max)
        SELECT series_id, r.res, ts - ts % r.res, COUNT(*), SUM(value), MIN(value), MAX(value)
        FROM readings, (SELECT 60000 AS res UNION ALL SELECT 3600000 UNION ALL SELECT 86400000) r
        WHERE flags = 0 GROUP BY series_id, r.res, ts - ts % r.res;
    """,
    # 7: users of the page and the API, their sessions, and the audit log of what they did
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,             -- viewer, duty_officer, technician, leader, admin
        password TEXT NOT NULL,         -- scrypt$n$r$p$salt$hash
        person TEXT,                    -- the people-file id the user acts as on tickets
        failures INTEGER NOT NULL DEFAULT 0,  -- wrong passwords in a row
        last_failure INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,            -- sha256 of the cookie's token
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        user TEXT,                      -- NULL: the console (stationgw users …)
        role TEXT,
        action TEXT NOT NULL,           -- login, ticket.ack, ticket.step, rules.reload, …
        target TEXT,
        detail TEXT,                    -- JSON
        ok INTEGER NOT NULL,
        source TEXT NOT NULL            -- the client address, or "cli"
    );
    """,
    # 8: per-device sequence gaps (reports numbered by a device that never arrived)
    """
    CREATE TABLE seq_gaps (
        device TEXT PRIMARY KEY,
        last_seq INTEGER,                     -- the newest report's seq and device time
        last_ts INTEGER,
        missing INTEGER NOT NULL DEFAULT 0,   -- reports never received, summed
        gaps INTEGER NOT NULL DEFAULT 0,      -- how many separate gaps
        last_gap_at INTEGER,
        last_gap_first INTEGER,
        last_gap_last INTEGER
    );
    """,
    # 9: rollups kept incrementally only per hour (gateway/storage/rollups.py): minutes come from
    # raw rows plus 1-minute chunks, days from hours plus a row for hours retention dropped
    """
    -- a day with no chunk of either kind: its 1-minute rows are its raw rows' minutes
    DELETE FROM rollups WHERE res = 60000
        AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.series_id = rollups.series_id
                        AND c.day = rollups.bucket / 86400000)
        AND NOT EXISTS (SELECT 1 FROM rollup_chunks c WHERE c.series_id = rollups.series_id
                        AND c.day = rollups.bucket / 86400000);
    -- elsewhere a 1-minute row stays as a residual: itself minus the raw rows' part (min
    -- and max stay: the truth's bounds hold the raw rows' too); compaction folds it in
    INSERT INTO rollups (series_id, res, bucket, count, sum, min, max)
        SELECT series_id, 60000, ts - ts % 60000, -COUNT(*), -SUM(value), 9e999, -9e999
        FROM readings r WHERE flags = 0
            AND (EXISTS (SELECT 1 FROM chunks c WHERE c.series_id = r.series_id
                         AND c.day = r.ts / 86400000)
                 OR EXISTS (SELECT 1 FROM rollup_chunks c WHERE c.series_id = r.series_id
                            AND c.day = r.ts / 86400000))
        GROUP BY series_id, ts - ts % 60000
        ON CONFLICT (series_id, res, bucket) DO UPDATE SET
            count = count + excluded.count, sum = sum + excluded.sum;
    -- a day row keeps only what its hours no longer hold (min and max stay, as above)
    UPDATE rollups SET count = count - h.c, sum = sum - h.s
        FROM (SELECT series_id AS sid, bucket - bucket % 86400000 AS d,
                     SUM(count) AS c, SUM(sum) AS s
              FROM rollups WHERE res = 3600000 GROUP BY series_id, d) AS h
        WHERE rollups.res = 86400000 AND h.sid = rollups.series_id AND h.d = rollups.bucket;
    DELETE FROM rollups WHERE res = 86400000 AND count = 0;
    """,
    # 10: reports sent without a device time (gateway/ingest/untimed.py), recognised on
    # redelivery by (device, seq, values); and sequence gaps waiting to be judged
    # (gateway/ingest/seq_gaps.py: a gap filled by a late report within the grace is no loss)
    """
    CREATE TABLE untimed_reports (
        device TEXT NOT NULL,
        seq INTEGER NOT NULL,
        digest INTEGER NOT NULL,              -- of the report's values
        ts INTEGER NOT NULL,                  -- the time the gateway gave its readings
        PRIMARY KEY (device, seq)
    ) WITHOUT ROWID;
    CREATE INDEX untimed_reports_ts ON untimed_reports (ts);
    CREATE TABLE seq_pending (
        device TEXT NOT NULL,
        first INTEGER NOT NULL,
        last INTEGER NOT NULL,
        found_at INTEGER NOT NULL,            -- gateway time the gap was first seen
        PRIMARY KEY (device, first)
    ) WITHOUT ROWID;
    """,
    # 11: 叫应 by policy (issue 18) — every attempt on every channel (who, channel, when,
    # outcome, how long); a delivery's own retry rhythm (voice redials: their count and
    # spacing come from the calling policy, not the generic backoff); a warning whose
    # waves found nobody new (the not-reached list stays with the duty room)
    """
    ALTER TABLE deliveries ADD COLUMN max_attempts INTEGER;  -- NULL: [notify] max_attempts
    ALTER TABLE deliveries ADD COLUMN retry_ms INTEGER;      -- NULL: exponential backoff
    ALTER TABLE warning_state ADD COLUMN exhausted INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id),
        call_id INTEGER REFERENCES calls(id),
        delivery_id INTEGER REFERENCES deliveries(id),
        channel TEXT NOT NULL,
        person TEXT,                    -- people-file id, when the attempt was for a person
        target TEXT NOT NULL,           -- phone, robot id, broadcaster id, topic
        started_at INTEGER NOT NULL,
        ended_at INTEGER NOT NULL,
        outcome TEXT NOT NULL,          -- sent, failed; voice: confirmed, answered, busy,
                                        -- no_answer, failed, stopped; robot: sent, throttled
        detail TEXT
    );
    CREATE INDEX attempts_by_ticket ON attempts (ticket_id, id);
    CREATE INDEX attempts_by_time ON attempts (started_at);
    """,
    # 12: commands to devices, queued per device: queued -> sent -> answered | failed | expired
    """
    CREATE TABLE device_commands (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        name TEXT NOT NULL,             -- clock.set, report.now, params.set, …
        args TEXT NOT NULL,             -- JSON object of key=value strings
        state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'answered', 'failed', 'expired')),
        created_at INTEGER NOT NULL,
        created_by TEXT,                -- user name; NULL: the gateway itself (clock keeping)
        expires_at INTEGER NOT NULL,    -- not sent or not answered by then: expired
        timeout_ms INTEGER NOT NULL,    -- a sent command unanswered this long is sent again
        max_attempts INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        sent_at INTEGER,
        done_at INTEGER,
        answer TEXT                     -- the device's answer, or why it failed / expired
    );
    CREATE INDEX device_commands_open ON device_commands (device, state, id);
    """,
    # 13: the station file the gateway runs with, without its secrets
    # (gateway/config/stored.py), so that a command given only the database reads the
    # station's names, grid, people and rules as they were
    """
    CREATE TABLE IF NOT EXISTS station_file (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        saved_at INTEGER NOT NULL,      -- UTC ms
        config TEXT NOT NULL,           -- the validated station file, as JSON, no secrets
        rules TEXT NOT NULL             -- {file name: text} of the rule files
    );
    """,
    # 14: pictures stations sent (SL651 function 36), kept as files under the data folder's
    # pictures/ (gateway/storage/pictures.py); and the frames each device sent that were
    # accepted with a departure from its protocol's standard (a field variant)
    """
    CREATE TABLE pictures (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        observed_at INTEGER NOT NULL,   -- the station's observation time, UTC ms
        received_at INTEGER NOT NULL,   -- when the gateway had it whole, UTC ms
        file TEXT NOT NULL,             -- relative to the pictures folder: <device>/<time>.jpg
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        UNIQUE (device, observed_at)
    );
    CREATE INDEX pictures_by_device ON pictures (device, observed_at);
    ALTER TABLE device_health ADD COLUMN variants INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE device_health ADD COLUMN last_variant TEXT;
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; return the version it is at."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {version} is newer than this gateway knows "
            f"({len(MIGRATIONS)}); upgrade stationgw"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        script = f"BEGIN IMMEDIATE;\n{MIGRATIONS[number - 1]};\nPRAGMA user_version = {number};"
        try:
            conn.executescript(script + "\nCOMMIT;")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"migration {number} failed: {e}") from e
    return len(MIGRATIONS)
