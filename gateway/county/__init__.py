"""The county service: 200 township stations on a NATS JetStream cluster and PostgreSQL.

What crosses the county bus (the contract between a station's `nats` uplink, the MQTT
listener of the cluster, and `stationgw county`):

Stream `COUNTY` (replicas 3, file storage, `duplicate_window` ≥ 2 min) captures the
subjects `county.>`. A station `<st>` publishes, in outbox order:
- `county.<st>.readings`: {"station", "seq", "last", "readings": [[device, metric, ts_ms,
  value, flags], …]}; the i-th reading has seq `seq + i`.
- `county.<st>.tickets`: {"station", "seq", "last", "ticket": {…}, "event": {…}}: one
  ticket event with the ticket as it stood after it (the station's outbox trigger,
  migration 5, says the keys).
- `county.<st>.health`: {"station", "seq", "last", "health": {…}}: a device's health or
  online state changed.
- `county.<st>.state` (not from the outbox; every `state_interval_s` and at start): what
  the county needs to show the station by its own names — {"station", "at" (ms), "name",
  "tz", "version", "lon", "lat", "villages": [{"id", "name"}], "points": [{"id", "name",
  "village", "lon", "lat", "kind"}], "devices": [{"id", "name", "point", "protocol"}],
  "people": [{"id", "name", "role"}], "plan": {"version", "hash", "errors": [..]},
  "disk_free_mb", "backlog", "clock": {"sane": bool, "ms": station clock at send}}.
- `county.<st>.plan`: {"station", "at", "version", "hash", "ok": bool, "errors": [...]}:
  what the station did with a pushed rules plan (#19 item 4).

Every outbox message carries the header `Nats-Msg-Id: <st>:<seq>` (its first seq), so
JetStream drops a resend inside its duplicate window, and the county's writes are
idempotent on (station, seq) beyond it: a message is stored once whatever happens.
Stations on MQTT publish the same payloads to `county/<st>/readings` etc. through the
cluster's MQTT listener (NATS maps `/` to `.`).

Rule plans go down through the key-value bucket `county_plans`: key `all` or `group.<g>`
or `station.<st>`, value {"version", "hash", "rules": "<TOML text of a rules file>",
"people"?: …, "deadlines"?: …}.

Inside: `config` (county.toml), `schema` (PostgreSQL migrations), `store` (psycopg),
`consumer` (the durable consumer shared by every instance), `escalation`, `http`
(the county page and API). The county imports the station's rooms it reuses (config
models for people and notify channels, notify, auth, rules); nothing of the station's
imports the county.
"""
