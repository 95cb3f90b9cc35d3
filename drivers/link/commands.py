"""What every driver's command set shares: the error, a command's description, the set.

A protocol that takes commands has a pure module (drivers/<protocol>/commands.py) with
`COMMANDS` and `check(name, args, transport, now_ms)`, named in its registry line
(drivers/registry.py). `check` raises `CommandError` naming the command, the parameter and
what is wrong; the gateway answers it with a 4xx (API) or exit 2 (CLI), and queues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from drivers.link.config import TransportModel


class CommandError(ValueError):
    """A command that cannot be sent: unknown, or a parameter missing or out of range."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    function: int  # the protocol's function or command code (0 where it has none)
    title: str  # Chinese, for the page and the audit
    params: str  # what key=value it takes, for the help text


class CommandSet(Protocol):
    """A protocol's command module, as the gateway sees it."""

    COMMANDS: Mapping[str, Command]

    def check(
        self, name: str, args: dict[str, str], transport: TransportModel, now_ms: int
    ) -> None: ...


def unknown(protocol: str, name: str, commands: Mapping[str, Command]) -> CommandError:
    return CommandError(f"unknown {protocol} command {name!r}; one of {', '.join(commands)}")


def only(name: str, args: Mapping[str, str], allowed: set[str]) -> None:
    """Refuse parameters the command does not take."""
    for key in args:
        if key not in allowed:
            raise CommandError(f"{name}: unknown parameter {key!r}")
