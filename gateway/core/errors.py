"""The gateway's error tree; foreign exceptions are converted where they enter."""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration or rules file is invalid; `problems` lists each one."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" if path else p for p in problems))


class StoreError(GatewayError):
    """The database could not be opened, migrated or written."""


class BatchError(GatewayError):
    """A batch failed because of what it holds (not because the store refused it): the
    pipeline commits its messages one by one and quarantines the one that fails."""


class DriverError(GatewayError):
    """A transport or protocol driver failed."""


class PayloadError(DriverError):
    """A device payload could not be decoded; the reason names what and where."""


class FrameError(PayloadError):
    """A frame that cannot be decoded: what is wrong (`reason`) and where (`offset`, bytes)."""

    def __init__(self, reason: str, offset: int = 0, kind: str = "malformed") -> None:
        self.reason = reason
        self.offset = offset
        self.kind = kind
        super().__init__(f"{reason} (byte offset {offset})")


class TicketError(GatewayError):
    """A ticket action is not allowed (unknown ticket, wrong state)."""


class TicketNotFound(TicketError):
    """No ticket has that id."""


class TicketConflict(TicketError):
    """The ticket is not in a state that allows the action (e.g. already acknowledged)."""
