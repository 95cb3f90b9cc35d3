"""The protocols the gateway speaks, one line each.

Config validation (a device's `transport` table and its cross-checks), field start-up
(gateway/ingest/field.py) and `stationgw decode` read this table; a new protocol is a folder
under drivers/ and one line here. Heavy IO modules load only when a station uses them
(`start` is a "module:function" name), so reading a station file stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Annotated, Any, Final, Union

from pydantic import Field

from drivers.cigem import config as cigem
from drivers.cigem import describe as cigem_describe
from drivers.gb26875 import config as gb26875
from drivers.gb26875 import describe as gb26875_describe
from drivers.handheld import config as handheld
from drivers.hj212 import config as hj212
from drivers.hj212 import describe as hj212_describe
from drivers.link.commands import CommandSet
from drivers.link.config import TransportModel
from drivers.modbus import config as modbus
from drivers.modbus import describe as modbus_describe
from drivers.mqtt_json import config as mqtt_json
from drivers.sl651 import config as sl651
from drivers.sl651 import describe as sl651_describe

Problems = Callable[[str, TransportModel, set[str], Mapping[str, str]], list[str]]
Describe = Callable[[bytes, tzinfo, int], dict[str, Any]]


def _none(where: str, t: TransportModel, metrics: set[str], ports: Mapping[str, str]) -> list[str]:
    return []


@dataclass(frozen=True)
class Decoder:
    """`stationgw decode NAME FRAME`: one frame to JSON."""

    name: str
    describe: Describe
    text: bool = False  # the frame is given as its text (HJ 212), not as hex


@dataclass(frozen=True)
class Protocol:
    kind: str  # `transport.kind` in the station file; else the name of its section
    transport: type[TransportModel] | None  # its pydantic model; None: a link, no device kind
    start: str | None = None  # "module:function" that starts its field driver, if any
    problems: Problems = _none  # cross-checks against the device's metrics and serial ports
    decode: Decoder | None = None
    commands: str | None = None  # module of its command set (drivers/link/commands.py)

    def command_set(self) -> CommandSet | None:
        """The commands devices of this protocol take (`stationgw command`, the API)."""
        if self.commands is None:
            return None
        module: CommandSet = importlib.import_module(self.commands)
        return module

    def starter(self) -> Callable[..., Any]:
        if self.start is None:
            raise LookupError(f"protocol {self.kind} has no field driver")
        module, _, fn = self.start.partition(":")
        starter: Callable[..., Any] = getattr(importlib.import_module(module), fn)
        return starter


# fmt: off
PROTOCOLS: Final[dict[str, Protocol]] = {p.kind: p for p in (
    Protocol("mqtt_json", mqtt_json.MqttJsonTransport),  # the spine: gateway/ingest/pipeline.py
    Protocol("sl651", sl651.Sl651Transport, "drivers.sl651.server:start", sl651.problems, Decoder("sl651", sl651_describe.describe), "drivers.sl651.commands"),  # noqa: E501
    Protocol("modbus_rtu", modbus.ModbusRtuTransport, "drivers.modbus.master:start", modbus.problems, Decoder("modbus-rtu", modbus_describe.describe), "drivers.modbus.commands"),  # noqa: E501
    Protocol("modbus_tcp", modbus.ModbusTcpTransport, "drivers.modbus.tcp:start", modbus.problems, commands="drivers.modbus.commands"),  # noqa: E501
    Protocol("cigem", cigem.CigemTransport, "drivers.cigem.mqtt:start", cigem.problems, Decoder("cigem", cigem_describe.describe), "drivers.cigem.commands"),  # noqa: E501
    Protocol("gb26875", gb26875.Gb26875Transport, "drivers.gb26875.server:start", decode=Decoder("gb26875", gb26875_describe.describe), commands="drivers.gb26875.commands"),  # noqa: E501
    Protocol("handheld", handheld.HandheldTransport, "drivers.handheld.io:start"),
    Protocol("hj212", hj212.Hj212Transport, "drivers.hj212.server:start", hj212.problems, Decoder("hj212", hj212_describe.describe, text=True)),  # noqa: E501
    # a link, not a device kind: [[dtu]] sections carry sl651 or modbus_rtu devices; after
    # both, so that SL 651 behind a DTU goes through the running SL 651 driver
    Protocol("dtu", None, "drivers.dtu.server:start"),
)}
# fmt: on

TRANSPORTS: Final = tuple(p.transport for p in PROTOCOLS.values() if p.transport is not None)
TRANSPORT_KINDS = frozenset(p.kind for p in PROTOCOLS.values() if p.transport is not None)
DECODERS: Final[dict[str, Describe]] = {
    p.decode.name: p.decode.describe for p in PROTOCOLS.values() if p.decode is not None
}
TEXT_DECODERS = frozenset(p.decode.name for p in PROTOCOLS.values() if p.decode and p.decode.text)

if TYPE_CHECKING:
    Transport = TransportModel
else:
    Transport = Annotated[
        Union[TRANSPORTS],  # noqa: UP007
        Field(discriminator="kind"),
    ]


def transport_problems(
    index: int, transport: TransportModel, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    """Cross-checks of one device's transport against its metrics and the serial ports."""
    return PROTOCOLS[transport.kind].problems(
        f"devices[{index}].transport", transport, metrics, ports
    )
