"""`[broker.tls]`: the gateway reaches its broker over TLS (CA file, optional client cert)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator


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
