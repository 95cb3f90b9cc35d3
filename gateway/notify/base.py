"""The one small interface every channel implements, and what it is handed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.core.errors import GatewayError


class DeliveryError(GatewayError):
    """A channel could not deliver; the dispatcher retries with backoff (or the
    delivery's own rhythm: voice redials). `outcome` names how it ended (busy, …)."""

    def __init__(self, message: str, *, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    ticket_id: int
    channel: str
    target: str  # phone, person id, URL, siren device
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AckIn:
    """An acknowledgement that came back through a channel."""

    by: str  # person id, phone or name
    via: str  # channel name
    ticket: int | None = None
    code: str | None = None
    note: str | None = None
    done: Callable[[], None] | None = None  # tells the channel it is stored (MQTT PUBACK)


OnAck = Callable[[AckIn], None]  # called on the event loop


class Channel(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, d: Delivery) -> str | None:
        """Deliver or raise DeliveryError (the dispatcher bounds the time it may take);
        optionally return the outcome to record (voice: "confirmed")."""
        ...
