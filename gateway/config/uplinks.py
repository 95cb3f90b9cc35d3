"""Configuration of the uplinks to the county: the outbox budget, MQTT, InfluxDB, NATS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxSection(_Model):
    """The outbox's disk budget; past it the oldest readings are dropped, counted, shown."""

    max_mb: float = Field(default=1024, gt=0)


class Tls(_Model):
    ca_file: Path | None = None  # the county's CA; None: the system's trusted CAs
    cert_file: Path | None = None  # client certificate, if the broker wants one
    key_file: Path | None = None
    insecure: bool = False  # skip the host name check (test brokers only)

    @model_validator(mode="after")
    def _pair(self) -> Tls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttUplinkSection(_Model):
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: Tls | None = None  # present: connect with TLS
    station: Ident | None = None  # the id in county/<station>/…; default [station] id
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    batch_size: int = Field(default=500, ge=1, le=10_000)  # readings per message
    inflight: int = Field(default=100, ge=1, le=65_535)  # messages awaiting PUBACK


class InfluxUplinkSection(_Model):
    url: str = Field(default="http://127.0.0.1:8086", pattern=r"^https?://")
    mode: Literal["v2", "v1"] = "v2"
    # v2 (influxdb-client; InfluxDB 2.x, 3.x and 1.8+, where the token is "user:password")
    bucket: str | None = Field(default=None, min_length=1)
    org: str = ""
    token: str | None = None
    # v1 (/write?db=, InfluxDB 1.x before 1.8)
    database: str | None = Field(default=None, min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password: str | None = None
    station: Ident | None = None  # the station tag; default [station] id
    batch_size: int = Field(default=5000, ge=1, le=100_000)  # points per write
    timeout_s: float = Field(default=10, gt=0)
    events: bool = True  # also write ticket events (measurement ticket_event)
    verify_ssl: bool = True

    @model_validator(mode="after")
    def _target(self) -> InfluxUplinkSection:
        if self.mode == "v2" and self.bucket is None:
            raise ValueError("mode v2 needs bucket")
        if self.mode == "v1" and self.database is None:
            raise ValueError("mode v1 needs database")
        return self


class NatsUplinkSection(_Model):
    """The county's NATS JetStream cluster (the county bus, gateway/county/__init__.py)."""

    servers: list[Annotated[str, Field(pattern=r"^(nats|tls)://[^\s]+$")]] = Field(min_length=1)
    user: str | None = None
    password: str | None = None
    creds_file: Path | None = None  # a .creds file (JWT and NKey seed) instead of user/password
    tls: Tls | None = None  # present: connect with TLS
    station: Ident | None = None  # the id in county.<station>.…; default [station] id
    group: Ident | None = None  # the county's group of stations (plans for `group.<group>`)
    batch: int = Field(default=500, ge=1, le=10_000)  # readings per message
    inflight: int = Field(default=64, ge=1, le=4000)  # messages awaiting JetStream's ack
    max_rate: float = Field(default=2000, gt=0)  # items a second at most (a backlog drains so)
    ack_timeout_s: float = Field(default=5, gt=0, le=300)  # no ack by then: send again
    state_interval_s: float = Field(default=60, ge=1, le=3600)  # county.<st>.state every …

    @model_validator(mode="after")
    def _auth(self) -> NatsUplinkSection:
        if self.creds_file is not None and self.user is not None:
            raise ValueError("creds_file and user/password exclude each other")
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password go together")
        return self


def _absolute(tls: Tls, base: Path) -> Tls:
    files = {
        k: p if p is None or p.is_absolute() else (base / p).resolve()
        for k, p in (
            ("ca_file", tls.ca_file),
            ("cert_file", tls.cert_file),
            ("key_file", tls.key_file),
        )
    }
    return tls.model_copy(update=files)


class UplinksSection(_Model):
    outbox: OutboxSection = OutboxSection()
    mqtt: MqttUplinkSection | None = None
    influx: InfluxUplinkSection | None = None
    nats: NatsUplinkSection | None = None

    def names(self) -> list[str]:
        return [
            n
            for n, s in (("influx", self.influx), ("mqtt", self.mqtt), ("nats", self.nats))
            if s is not None
        ]

    def resolved(self, base: Path) -> UplinksSection:
        """TLS and credential file paths relative to the station file's folder made
        absolute."""
        out = self
        if self.mqtt is not None and self.mqtt.tls is not None:
            mqtt = self.mqtt.model_copy(update={"tls": _absolute(self.mqtt.tls, base)})
            out = out.model_copy(update={"mqtt": mqtt})
        if self.nats is not None:
            n = self.nats
            update: dict[str, object] = {}
            if n.tls is not None:
                update["tls"] = _absolute(n.tls, base)
            if n.creds_file is not None and not n.creds_file.is_absolute():
                update["creds_file"] = (base / n.creds_file).resolve()
            out = out.model_copy(update={"nats": n.model_copy(update=update)})
        return out


def uplink_problems(
    up: UplinksSection, broker_host: str, broker_port: int, client: str
) -> list[str]:
    """What the models alone cannot see: an uplink that would kick the gateway's own
    MQTT session off (same broker, same client id)."""
    out: list[str] = []
    m = up.mqtt
    if m is not None and m.client_id == client and (m.host, m.port) == (broker_host, broker_port):
        out.append("uplinks.mqtt.client_id: the same as [broker] client_id on the same broker")
    return out


def nats_problems(up: UplinksSection, station: str) -> list[str]:
    """A station id that cannot be one token of a NATS subject (county.<st>.readings)."""
    if up.nats is None or "." not in (up.nats.station or station):
        return []
    where = "uplinks.nats.station" if up.nats.station else "station.id"
    return [f"{where}: a NATS uplink needs a station id without '.' (one subject token)"]
