"""Station configuration: TOML read with tomllib, validated with pydantic.

Unknown keys are errors. Every problem is reported with its key path and the file name.
Relative paths inside the file are resolved against the file's folder.
"""

from __future__ import annotations

import ipaddress
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers.cigem.config import CigemSection
from drivers.dtu.config import DtuSection, dtu_problems
from drivers.gb26875.config import Gb26875Section
from drivers.hj212.config import Hj212Section, Hj212Transport, mn_problems
from drivers.link.broker import Broker
from drivers.link.config import SerialPort
from drivers.modbus.config import ModbusRtuTransport
from drivers.mqtt_json.config import MqttJsonTransport
from drivers.registry import TRANSPORT_KINDS, Transport, transport_problems
from drivers.sl651.config import Sl651Section
from gateway.config.dashboard import DashboardSection
from gateway.config.field import Checklist, HealthSection
from gateway.config.loop import (
    NotifySection,
    Person,
    Shift,
    TicketsSection,
    calling_problems,
    cross_check_loop,
)
from gateway.config.reports import ReportsSection
from gateway.config.storage import StorageSection
from gateway.config.uplinks import UplinksSection, nats_problems, uplink_problems
from gateway.core.errors import ConfigError
from gateway.core.validation import problems
from rules.durations import parse_duration

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StationSection(_Model):
    id: Ident
    name: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class Village(_Model):
    id: Ident
    name: str = Field(min_length=1)


class Point(_Model):
    """A monitoring point (监测点): a slope, a river section."""

    id: Ident
    name: str = Field(min_length=1)
    village: Ident
    group: Ident | None = None  # the grid group (村民小组) responsible, if any
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    kind: Ident | None = None  # slope, river, …: which checklists apply


def _duration(v: str | None) -> str | None:
    if v is not None:
        parse_duration(v)
    return v


class MetricSpec(_Model):
    """A metric of a device: its unit, physical range and plausibility settings.

    A value outside [min, max] is a sensor fault; so are the same value for longer than
    `stuck_after`, a step larger than `max_jump` between readings, and a supply or
    battery value under `fault_below`. Faulty values are stored flagged and never judged
    by hazard rules.
    """

    unit: str = Field(min_length=1)
    min: float
    max: float
    name: str | None = None
    stuck_after: str | None = None
    max_jump: float | None = Field(default=None, gt=0)
    fault_below: float | None = None

    _check_stuck = field_validator("stuck_after")(_duration)


class Device(_Model):
    id: Ident
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    point: Ident
    tags: list[str] = []
    transport: Transport = MqttJsonTransport()
    metrics: dict[Ident, MetricSpec] = Field(min_length=1)
    interval_s: float | None = Field(default=None, gt=0)  # expected reporting interval

    @field_validator("transport", mode="before")
    @classmethod
    def _transport_name(cls, v: object) -> object:
        return {"kind": v} if isinstance(v, str) else v


class Database(_Model):
    path: Path


class Http(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # a whole request (headers and body) must arrive within this, or the connection closes
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)
    idle_timeout_s: float = Field(default=5.0, gt=0, le=300)  # an idle keep-alive connection
    max_connections: int = Field(default=256, ge=8, le=10_000)  # requests served at once
    # the only peers whose X-Forwarded-For / -Proto is believed (addresses or networks)
    trusted_proxies: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ValueError(f"{p!r} is not an IP address or network") from None
        return v


class RulesSection(_Model):
    path: Path | None = None  # a rules file, or a folder of them (*.toml)
    lateness: str = "1h"  # how late a reading may come and still move accumulation levels

    _check_lateness = field_validator("lateness")(_duration)


class PipelineSection(_Model):
    batch_max: int = Field(default=2000, ge=1, le=100_000)
    queue_max: int = Field(default=20_000, ge=1, le=1_000_000)
    # how long a late report may fill a sequence gap before it is judged lost
    seq_gap_grace_s: int = Field(default=120, ge=0, le=86_400)


class Config(_Model):
    station: StationSection
    villages: list[Village] = []
    points: list[Point] = []
    devices: list[Device] = []
    broker: Broker = Broker()
    database: Database
    http: Http = Http()
    rules: RulesSection = RulesSection()
    pipeline: PipelineSection = PipelineSection()
    sl651: Sl651Section | None = None
    cigem: CigemSection = CigemSection()
    gb26875: Gb26875Section | None = None
    hj212: Hj212Section | None = None  # HJ 212 analysers over TCP
    dtu: list[DtuSection] = []  # 4G DTUs in transparent mode
    checklists: list[Checklist] = []
    serial_ports: list[SerialPort] = []
    health: HealthSection = HealthSection()
    people: list[Person] = []  # who is called: names, phones, roles, grid, deputies
    duty: list[Shift] = []  # the duty roster (值班表)
    tickets: TicketsSection = TicketsSection()
    notify: NotifySection = NotifySection()
    reports: ReportsSection = ReportsSection()  # what the monthly report reads as rain, …
    uplinks: UplinksSection = UplinksSection()  # to the county: MQTT broker, InfluxDB
    storage: StorageSection = StorageSection()  # compaction, retention, disk guard
    dashboard: DashboardSection = DashboardSection()  # the page: risk map background

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)


def _cross_check(cfg: Config) -> list[str]:
    out: list[str] = []

    def dupes(kind: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i, x in enumerate(ids):
            if x in seen:
                out.append(f"{kind}[{i}].id: duplicate id {x!r}")
            seen.add(x)

    dupes("villages", [v.id for v in cfg.villages])
    dupes("points", [p.id for p in cfg.points])
    dupes("devices", [d.id for d in cfg.devices])
    dupes("serial_ports", [s.id for s in cfg.serial_ports])
    ports = {s.id: s.protocol for s in cfg.serial_ports}
    handhelds = {d.id for d in cfg.devices if d.transport.kind == "handheld"}
    for i, sp in enumerate(cfg.serial_ports):
        if sp.protocol == "handheld_dock" and sp.device not in handhelds:
            out.append(
                f"serial_ports[{i}].device: a dock names its handheld (transport kind handheld)"
            )
    villages = {v.id for v in cfg.villages}
    points = {p.id for p in cfg.points}
    for i, p in enumerate(cfg.points):
        if p.village not in villages:
            out.append(f"points[{i}].village: unknown village {p.village!r}")
    for i, d in enumerate(cfg.devices):
        if d.point not in points:
            out.append(f"devices[{i}].point: unknown monitoring point {d.point!r}")
        for name, m in d.metrics.items():
            if m.min >= m.max:
                out.append(f"devices[{i}].metrics.{name}.max: must be greater than min ({m.min})")
        out += transport_problems(i, d.transport, set(d.metrics), ports)
    # the [[dtu]] sections and the Modbus devices behind them
    behind = [
        (i, d.transport.dtu)
        for i, d in enumerate(cfg.devices)
        if isinstance(d.transport, ModbusRtuTransport) and d.transport.dtu is not None
    ]
    out += dtu_problems(cfg.dtu, behind)
    out += mn_problems(
        [
            (i, d.transport)
            for i, d in enumerate(cfg.devices)
            if isinstance(d.transport, Hj212Transport)
        ]
    )
    groups = {p.group for p in cfg.points if p.group}
    out += cross_check_loop(cfg.people, cfg.duty, cfg.notify.sirens, villages, points, groups)
    grid = [(p.id, p.village, p.group) for p in cfg.points]
    out += calling_problems(cfg.people, cfg.duty, cfg.tickets, cfg.notify, grid, villages)
    out += uplink_problems(cfg.uplinks, cfg.broker.host, cfg.broker.port, cfg.broker.client_id)
    out += nats_problems(cfg.uplinks, cfg.station.id)
    return out


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()


def parse_config(data: dict[str, object], path: Path) -> Config:
    """Validate parsed TOML; raise ConfigError listing every problem."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(str(path), problems(e, TRANSPORT_KINDS)) from None
    found = _cross_check(cfg)
    if found:
        raise ConfigError(str(path), found)
    base = path.parent
    db = Database(path=_resolve(base, cfg.database.path))
    rules = cfg.rules.model_copy(
        update={"path": _resolve(base, cfg.rules.path) if cfg.rules.path else None}
    )
    ports = [p.model_copy(update={"path": _resolve(base, p.path)}) for p in cfg.serial_ports]
    notify = cfg.notify
    if notify.sms is not None:
        sms = notify.sms.model_copy(update={"port": _resolve(base, notify.sms.port)})
        notify = notify.model_copy(update={"sms": sms})
    if any(s.port for s in notify.sirens):
        sirens = [
            s.model_copy(update={"port": _resolve(base, s.port)}) if s.port else s
            for s in notify.sirens
        ]
        notify = notify.model_copy(update={"sirens": sirens})
    broker = cfg.broker
    if broker.tls is not None:
        broker = broker.model_copy(update={"tls": broker.tls.resolved(base)})
    dashboard = cfg.dashboard
    if (bg := dashboard.map.background) is not None:
        bg = _resolve(base, bg)
        if not bg.is_file():
            raise ConfigError(str(path), [f"dashboard.map.background: no file {bg}"])
        dashboard = dashboard.model_copy(
            update={"map": dashboard.map.model_copy(update={"background": bg})}
        )
    if dashboard.map.layers:
        layers = []
        for i, layer in enumerate(dashboard.map.layers):
            f = _resolve(base, layer.file)
            if not f.is_file():
                raise ConfigError(str(path), [f"dashboard.map.layers[{i}].file: no file {f}"])
            layers.append(layer.model_copy(update={"file": f}))
        dashboard = dashboard.model_copy(
            update={"map": dashboard.map.model_copy(update={"layers": layers})}
        )
    return cfg.model_copy(
        update={
            "database": db,
            "rules": rules,
            "serial_ports": ports,
            "notify": notify,
            "broker": broker,
            "uplinks": cfg.uplinks.resolved(base),
            "dashboard": dashboard,
        }
    )


MAX_FILE_BYTES = 4 * 1024 * 1024  # a station's largest real file is a few hundred KiB


def read_toml(path: Path) -> dict[str, object]:
    """Parse a configuration or rule file; hostile files are refused with a clear error:
    too large, nested too deeply, numbers too long to convert."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read: {e.strerror}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(str(path), [f"file is larger than {MAX_FILE_BYTES // 1048576} MiB"])
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [f"not UTF-8 at byte {e.start}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), [f"not valid TOML: {e}"]) from None
    except RecursionError:
        raise ConfigError(str(path), ["not accepted: arrays or tables nested too deeply"]) from None
    except ValueError as e:  # an integer of thousands of digits
        raise ConfigError(str(path), [f"not accepted: {e}"]) from None


def load_config(path: Path) -> Config:
    return parse_config(read_toml(path), path)
