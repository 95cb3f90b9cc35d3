"""Modbus settings: an RTU slave's or a TCP device's `transport` table with its register map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from drivers.link.config import Model, Name, TransportModel

Word = Literal["int16", "uint16", "int32", "uint32", "float32"]


class Register(Model):
    metric: Name
    address: int = Field(ge=0, le=0xFFFF)
    function: Literal[3, 4] = 3  # 3 holding registers, 4 input registers
    type: Word = "uint16"
    word_order: Literal["big", "little"] = "big"  # 32-bit values: high word first or last
    scale: float = 1.0
    offset: float = 0.0
    # `stationgw command DEVICE register.write metric=… value=…` may write it (function 6,
    # or 16 for 32-bit values), within min…max in the metric's unit when given
    writable: bool = False
    min: float | None = None
    max: float | None = None

    @property
    def count(self) -> int:
        return 1 if self.type in ("int16", "uint16") else 2

    @model_validator(mode="after")
    def _writable(self) -> Register:
        if self.writable and self.function != 3:
            raise ValueError("only holding registers (function 3) can be writable")
        if (self.min is not None or self.max is not None) and not self.writable:
            raise ValueError("min/max bound the values written: set writable = true")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self


class ModbusRtuTransport(TransportModel):
    kind: Literal["modbus_rtu"]
    port: Name | None = Field(
        default=None, description="id of a [[serial_ports]] entry with protocol modbus_rtu"
    )
    # the RTU line behind a 4G DTU instead of a local serial port (drivers/dtu/)
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


class ModbusTcpTransport(TransportModel):
    """The RTU register maps over the LAN: a PLC, a sensor or a serial-to-Ethernet gateway."""

    kind: Literal["modbus_tcp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255, description="unit id (behind a converter)")
    poll_s: float = Field(default=10.0, gt=0, le=86_400)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    registers: list[Register] = Field(min_length=1)


def problems(
    where: str, t: TransportModel, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    assert isinstance(t, ModbusRtuTransport | ModbusTcpTransport)
    out: list[str] = []
    if not isinstance(t, ModbusRtuTransport) or t.port is None:
        pass  # Modbus TCP, or behind a DTU (checked with the [[dtu]] sections)
    elif t.port not in ports:
        out.append(f"{where}.port: unknown serial port {t.port!r}")
    elif ports[t.port] != "modbus_rtu":
        out.append(f"{where}.port: serial port {t.port!r} speaks {ports[t.port]}")
    for j, reg in enumerate(t.registers):
        if reg.metric not in metrics:
            out.append(f"{where}.registers[{j}].metric: metric {reg.metric!r} is not configured")
    return out
