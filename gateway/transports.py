"""Per-transport settings of devices and the links drivers listen on (station file).

A device's `transport` is a table whose `kind` picks the driver:

    transport = { kind = "sl651", address = "0081120005", elements = { PT = "rain_total_mm" } }

(`transport = "mqtt_json"`, the default, is the spine's MQTT JSON.) Protocol element names
(SL 651 `PT`, Modbus registers, CIGEM sensor codes) map to the device's configured metrics
here; nothing in the drivers names a station metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.hj212.config import Hj212Transport  # HJ 212 (issue 22)

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
HexAddress = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{10}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttJsonTransport(_Model):
    kind: Literal["mqtt_json"] = "mqtt_json"


class Sl651Transport(_Model):
    """An SL 651 station: its address; its elements (PT, Z, VT, FF09 …) -> metrics."""

    kind: Literal["sl651"]
    address: HexAddress = Field(description="remote station address, 10 hex digits")
    password: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{4}$")] | None = None
    elements: dict[str, Name] = Field(min_length=1)
    reply: bool = True  # send the confirmation frame after the commit


Word = Literal["int16", "uint16", "int32", "uint32", "float32"]


class Register(_Model):
    metric: Name
    address: int = Field(ge=0, le=0xFFFF)
    function: Literal[3, 4] = 3  # 3 holding registers, 4 input registers
    type: Word = "uint16"
    word_order: Literal["big", "little"] = "big"  # 32-bit values: high word first or last
    scale: float = 1.0
    offset: float = 0.0

    @property
    def count(self) -> int:
        return 1 if self.type in ("int16", "uint16") else 2


class ModbusRtuTransport(_Model):
    kind: Literal["modbus_rtu"]
    port: Name | None = Field(
        default=None, description="id of a [[serial_ports]] entry with protocol modbus_rtu"
    )
    # DTU (issue 22): the RTU line behind a 4G DTU instead of a local serial port
    dtu: Name | None = Field(default=None, description="id of a [[dtu]] speaking modbus_rtu")
    unit: int = Field(ge=1, le=247, description="the slave's Modbus address")
    poll_s: float = Field(default=10.0, gt=0, le=86_400)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    registers: list[Register] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_line(self) -> ModbusRtuTransport:
        if (self.port is None) == (self.dtu is None):
            raise ValueError("name either a serial `port` or a `dtu`, not both or neither")
        return self


# --- Modbus TCP (issue 22): the RTU register maps over the LAN ---------------------
class ModbusTcpTransport(_Model):
    kind: Literal["modbus_tcp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255, description="unit id (behind a converter)")
    poll_s: float = Field(default=10.0, gt=0, le=86_400)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    registers: list[Register] = Field(min_length=1)


# --- end Modbus TCP ---------------------------------------------------------------


class CigemTransport(_Model):
    """A CIGEM universal geohazard device: `sensors` maps `L1_LF_1` or `L1_QJ_1.X` to metrics."""

    kind: Literal["cigem"]
    dev_id: str = Field(min_length=1, max_length=64)
    sensors: dict[str, Name] = Field(min_length=1)


class Gb26875Transport(_Model):
    """A user information transmission device (fire-alarm panel) by its source address."""

    kind: Literal["gb26875"]
    address: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{12}$")]  # 6 bytes, as sent
    reply: bool = True  # confirm (command 3) after the commit


class HandheldTransport(_Model):
    """A handheld recorder: records over MQTT (`stations/<station>/<device>/patrol`) or
    from a dock on a serial port."""

    kind: Literal["handheld"]


class ChecklistItem(_Model):
    id: Name
    text: str = Field(min_length=1)


class Checklist(_Model):
    """A patrol checklist (巡查清单) for monitoring points of the given kinds."""

    id: Name
    name: str = Field(min_length=1)
    point_kinds: list[Name] = []  # empty: any point
    items: list[ChecklistItem] = Field(min_length=1)


Transport = Annotated[
    MqttJsonTransport
    | Sl651Transport
    | ModbusRtuTransport
    | CigemTransport
    | Gb26875Transport
    | HandheldTransport
    | ModbusTcpTransport  # issue 22
    | Hj212Transport,  # issue 22
    Field(discriminator="kind"),
]
TRANSPORT_KINDS = frozenset(
    {"mqtt_json", "sl651", "modbus_rtu", "cigem", "gb26875", "handheld"}
    | {"modbus_tcp", "hj212"}  # issue 22
)


class Listen(_Model):
    host: str = "0.0.0.0"
    port: int = Field(ge=0, le=65535)


class Sl651Section(_Model):
    """Where SL 651 stations reach the gateway: a TCP port and/or serial ports."""

    listen: Listen | None = None
    timezone: str = "Asia/Shanghai"  # the stations' clocks (SL 651 uses Beijing time)
    reply_functions: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}$")]] = [
        "30",
        "31",
        "32",
        "33",
        "34",
        "35",
    ]
    idle_timeout_s: float = Field(default=600.0, gt=0)  # close a silent TCP connection
    frame_timeout_s: float = Field(default=5.0, gt=0)  # drop a partial frame after silence


class Gb26875Section(_Model):
    """Where alarm panels reach the gateway: a TCP port and/or serial ports."""

    listen: Listen | None = None
    timezone: str = "Asia/Shanghai"
    idle_timeout_s: float = Field(default=600.0, gt=0)
    frame_timeout_s: float = Field(default=5.0, gt=0)


class SerialPort(_Model):
    """A serial line (RS-485 bus, radio modem, USB dock) and the protocol spoken on it."""

    id: Name
    path: Path
    protocol: Literal["sl651", "modbus_rtu", "gb26875", "handheld_dock"]
    baud: int = Field(default=9600, ge=300, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    device: Name | None = None  # handheld_dock: the recorder docked on this port


class HealthSection(_Model):
    stale_factor: float = Field(default=3.0, ge=1.0, le=100.0)  # offline after factor×interval
    check_s: float = Field(default=5.0, gt=0, le=3600)


class CigemSection(_Model):
    topic: str = "$dp"


def transport_problems(
    index: int, transport: object, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    """Cross-checks of one device's transport against its metrics and the serial ports."""
    out: list[str] = []
    where = f"devices[{index}].transport"
    if isinstance(transport, Sl651Transport):
        for element, metric in transport.elements.items():
            if metric not in metrics:
                out.append(f"{where}.elements.{element}: metric {metric!r} is not configured")
    elif isinstance(transport, ModbusRtuTransport | ModbusTcpTransport):
        if not isinstance(transport, ModbusRtuTransport) or transport.port is None:
            pass  # Modbus TCP, or a DTU (checked with the [[dtu]] sections)
        elif transport.port not in ports:
            out.append(f"{where}.port: unknown serial port {transport.port!r}")
        elif ports[transport.port] != "modbus_rtu":
            out.append(
                f"{where}.port: serial port {transport.port!r} speaks {ports[transport.port]}"
            )
        for j, reg in enumerate(transport.registers):
            if reg.metric not in metrics:
                out.append(
                    f"{where}.registers[{j}].metric: metric {reg.metric!r} is not configured"
                )
    elif isinstance(transport, CigemTransport):
        for code, metric in transport.sensors.items():
            if metric not in metrics:
                out.append(f"{where}.sensors.{code}: metric {metric!r} is not configured")
    elif isinstance(transport, Hj212Transport):  # issue 22
        out += transport.problems(where, metrics)
    return out
