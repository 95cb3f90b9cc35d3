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
class Protocol:
    kind: str  # `transport.kind` in the station file
    transport: type[TransportModel]  # its pydantic model
    start: str | None = None  # "module:function" that starts its field driver, if any
    problems: Problems = _none  # cross-checks against the device's metrics and serial ports
    decode: tuple[str, Describe] | None = None  # `stationgw decode NAME`: one frame to JSON

    def starter(self) -> Callable[..., Any]:
        if self.start is None:
            raise LookupError(f"protocol {self.kind} has no field driver")
        module, _, fn = self.start.partition(":")
        starter: Callable[..., Any] = getattr(importlib.import_module(module), fn)
        return starter


# fmt: off
PROTOCOLS: Final[dict[str, Protocol]] = {p.kind: p for p in (
    Protocol("mqtt_json", mqtt_json.MqttJsonTransport),  # the spine: gateway/ingest/pipeline.py
    Protocol("sl651", sl651.Sl651Transport, "drivers.sl651.server:start", sl651.problems, ("sl651", sl651_describe.describe)),  # noqa: E501
    Protocol("modbus_rtu", modbus.ModbusRtuTransport, "drivers.modbus.master:start", modbus.problems, ("modbus-rtu", modbus_describe.describe)),  # noqa: E501
    Protocol("cigem", cigem.CigemTransport, "drivers.cigem.mqtt:start", cigem.problems, ("cigem", cigem_describe.describe)),  # noqa: E501
    Protocol("gb26875", gb26875.Gb26875Transport, "drivers.gb26875.server:start", decode=("gb26875", gb26875_describe.describe)),  # noqa: E501
    Protocol("handheld", handheld.HandheldTransport, "drivers.handheld.io:start"),
)}
# fmt: on

TRANSPORT_KINDS = frozenset(PROTOCOLS)
DECODERS: Final[dict[str, Describe]] = {
    p.decode[0]: p.decode[1] for p in PROTOCOLS.values() if p.decode is not None
}

if TYPE_CHECKING:
    Transport = TransportModel
else:
    Transport = Annotated[
        Union[tuple(p.transport for p in PROTOCOLS.values())],  # noqa: UP007
        Field(discriminator="kind"),
    ]


def transport_problems(
    index: int, transport: TransportModel, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    """Cross-checks of one device's transport against its metrics and the serial ports."""
    return PROTOCOLS[transport.kind].problems(
        f"devices[{index}].transport", transport, metrics, ports
    )
