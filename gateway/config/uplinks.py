"""Configuration of the uplinks to the county: the outbox budget, MQTT, InfluxDB."""

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


class UplinksSection(_Model):
    outbox: OutboxSection = OutboxSection()
    mqtt: MqttUplinkSection | None = None
    influx: InfluxUplinkSection | None = None

    def names(self) -> list[str]:
        return [n for n, s in (("influx", self.influx), ("mqtt", self.mqtt)) if s is not None]

    def resolved(self, base: Path) -> UplinksSection:
        """TLS file paths relative to the station file's folder made absolute."""
        if self.mqtt is None or self.mqtt.tls is None:
            return self
        tls = self.mqtt.tls
        files = {
            k: p if p is None or p.is_absolute() else (base / p).resolve()
            for k, p in (
                ("ca_file", tls.ca_file),
                ("cert_file", tls.cert_file),
                ("key_file", tls.key_file),
            )
        }
        mqtt = self.mqtt.model_copy(update={"tls": tls.model_copy(update=files)})
        return self.model_copy(update={"mqtt": mqtt})


def uplink_problems(
    up: UplinksSection, broker_host: str, broker_port: int, client: str
) -> list[str]:
    """What the models alone cannot see: an uplink that would kick the gateway's own
    MQTT session off (same broker, same client id)."""
    m = up.mqtt
    if m is None or m.client_id != client or (m.host, m.port) != (broker_host, broker_port):
        return []
    return ["uplinks.mqtt.client_id: the same as [broker] client_id on the same broker"]
