"""The notification link's connection to a real Mosquitto sends alerts without delay."""

from __future__ import annotations

import asyncio
import socket

import pytest

from drivers.link.broker import Broker
from gateway.notify.mqtt_link import MqttLink
from tests.conftest import Mosquitto

pytestmark = pytest.mark.integration


def test_alert_socket_has_nagle_off(mosquitto: Mosquitto) -> None:
    async def main() -> int:
        link = MqttLink(Broker(port=mosquitto.port, client_id="link-test"))
        await link.start()
        try:
            for _ in range(100):
                if link.connected:
                    break
                await asyncio.sleep(0.05)
            assert link.connected
            sock = link._client.socket()
            assert isinstance(sock, socket.socket)
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            await link.stop()
            # paho closes its wake-up socket pair only when the client is collected
            link._client._reset_sockets(sockpair_only=True)

    assert asyncio.run(main()) != 0
