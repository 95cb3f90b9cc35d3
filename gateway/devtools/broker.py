"""The embedded demo broker (amqtt), used only when no broker is configured.

amqtt speaks MQTT 3.1.1 and acknowledges on its own terms; it is fine for a demo on one
machine. Production stations run Mosquitto (see deploy/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from gateway.core.errors import GatewayError

log = logging.getLogger("stationgw.broker")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Any = None

    async def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except Exception as e:  # amqtt raises its own BrokerError and OSError
            raise GatewayError(f"embedded broker on {self.host}:{self.port}: {e}") from e
        log.info("embedded MQTT broker (amqtt) on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._broker.shutdown(), 5)
