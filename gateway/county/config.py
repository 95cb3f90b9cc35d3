"""county.toml: the county service's file (pydantic; errors name the key path).

Sections and who reads them:
- `[county]` name, time zone; `[[stations]]` the stations the county knows (a message from
  any other is refused and counted); `[nats]` the cluster; `[postgres]` the store;
  `[http]` the county page — the bus and the store (`consumer`, `store`, `http`).
- `[escalation]`, `[[people]]`, `[[duty]]`, `[notify]` — who the county calls when a
  township has not answered a warning in time (`escalation`); people, roster and
  channels are the station's own models, so a county file reads like a station's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.config.loop import NotifySection, Person, Shift

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountySection(_Model):
    name: str = Field(min_length=1)  # 某某县应急管理局
    timezone: str = "Asia/Shanghai"


class KnownStation(_Model):
    id: Ident
    name: str = Field(min_length=1)
    group: Ident | None = None  # plans can target a group of stations


class Group(_Model):
    """A group of stations by its own name (片区), for plans and the page."""

    id: Ident
    name: str = Field(min_length=1, max_length=40)


class NatsSection(_Model):
    servers: list[str] = Field(min_length=1)  # nats://host:4222 of every node
    user: str | None = None
    password: str | None = None
    creds_file: Path | None = None
    ca_file: Path | None = None
    stream: Ident = "COUNTY"
    consumer: Ident = "county"  # the durable consumer every instance shares
    max_deliver: int = Field(default=5, ge=1, le=100)  # then the message is dead-lettered


class PostgresSection(_Model):
    dsn: str = Field(min_length=1)  # postgresql://user@host/db


class CountyHttp(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)


class EscalationSection(_Model):
    """A township warning not answered within its level's deadline opens a county ticket;
    its calls go again every `redial_s` until someone at the county takes it, `rounds`
    rounds in all."""

    red_s: int = Field(default=600, ge=30)
    orange_s: int = Field(default=1200, ge=30)
    yellow_s: int = Field(default=3600, ge=30)
    blue_s: int | None = None  # None: blue warnings stay with the township
    redial_s: int = Field(default=300, ge=60)
    rounds: int = Field(default=3, ge=1, le=10)


class CountyConfig(_Model):
    county: CountySection
    stations: list[KnownStation] = []
    groups: list[Group] = []  # names of the stations' groups (a group unnamed: its stations)
    nats: NatsSection
    postgres: PostgresSection
    http: CountyHttp = CountyHttp()
    escalation: EscalationSection = EscalationSection()
    people: list[Person] = []
    duty: list[Shift] = []
    notify: NotifySection = NotifySection()


def county_problems(cfg: CountyConfig) -> list[str]:
    """What the models alone cannot see."""
    out: list[str] = []
    seen: set[str] = set()
    for i, s in enumerate(cfg.stations):
        if s.id in seen:
            out.append(f"stations[{i}].id: {s.id!r} is listed twice")
        if "." in s.id:
            out.append(f"stations[{i}].id: {s.id!r} has a '.' (one token of county.<st>.…)")
        seen.add(s.id)
    used = {s.group for s in cfg.stations if s.group}
    named: set[str] = set()
    for i, g in enumerate(cfg.groups):
        if g.id in named:
            out.append(f"groups[{i}].id: {g.id!r} is named twice")
        if g.id not in used:
            out.append(f"groups[{i}].id: no station of [[stations]] is in group {g.id!r}")
        named.add(g.id)
    return out


def load_county_config(path: Path) -> CountyConfig:
    """county.toml, validated; ConfigError naming the file and every key path."""
    from pydantic import ValidationError

    from gateway.config.station import read_toml
    from gateway.core.errors import ConfigError
    from gateway.core.validation import problems

    data = read_toml(path)
    try:
        cfg = CountyConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(str(path), problems(e)) from None
    found = county_problems(cfg)
    if found:
        raise ConfigError(str(path), found)
    n = cfg.nats
    files = {
        k: p if p is None or p.is_absolute() else (path.parent / p).resolve()
        for k, p in (("creds_file", n.creds_file), ("ca_file", n.ca_file))
    }
    return cfg.model_copy(update={"nats": n.model_copy(update=files)})
