"""Dashboard channel: the duty room's alarm as a server-sent event (`alarm`)."""

from __future__ import annotations

from gateway.events import Hub
from gateway.notify.base import Delivery


class DashboardChannel:
    name = "dashboard"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, d: Delivery) -> None:
        self.hub.publish("alarm", {**d.body, "delivery": d.id})
