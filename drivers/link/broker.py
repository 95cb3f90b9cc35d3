"""`[broker]`: the station's MQTT broker, and TLS to it (CA file, optional client cert).

The spine's MQTT JSON source and the drivers that subscribe their own topics (CIGEM,
handhelds) all reach the broker with these settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BrokerTls(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path  # the CA that signed the broker's certificate
    cert_file: Path | None = None  # a client certificate, where the broker asks for one
    key_file: Path | None = None
    insecure: bool = False  # skip the host name check (a broker reached by IP without SAN)

    @model_validator(mode="after")
    def _pair(self) -> BrokerTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self

    def resolved(self, base: Path) -> BrokerTls:
        def r(p: Path | None) -> Path | None:
            return None if p is None else p if p.is_absolute() else (base / p).resolve()

        return self.model_copy(
            update={
                "ca_file": r(self.ca_file),
                "cert_file": r(self.cert_file),
                "key_file": r(self.key_file),
            }
        )


class Broker(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="stationgw", min_length=1, max_length=64)
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    username: str | None = None
    password: str | None = None
    session_expiry_s: int = Field(default=7 * 86400, ge=0)
    receive_maximum: int = Field(default=10000, ge=1, le=65535)
    tls: BrokerTls | None = None  # TLS to the broker (deploy/mosquitto/station-secure.conf)
