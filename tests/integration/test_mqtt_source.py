"""The telemetry source against a real Mosquitto: a full buffer stops reading the socket
(TCP and the broker hold the rest), taking from it resumes, and nothing is lost or
reordered on the way."""

from __future__ import annotations

import asyncio

import pytest

from drivers.link.broker import Broker
from drivers.link.mqtt_client import MqttSource
from tests.conftest import Mosquitto
from tests.integration.test_end_to_end import publish_raw

pytestmark = pytest.mark.integration

SENT = 500
CAPACITY = 50


def test_a_full_buffer_holds_back_the_rest_and_loses_nothing(mosquitto: Mosquitto) -> None:
    async def main() -> tuple[list[int], int, int]:
        source = MqttSource(
            Broker(port=mosquitto.port, client_id="source-test"), ["t/#"], capacity=CAPACITY
        )
        await source.start()
        try:
            await asyncio.wait_for(source.up.wait(), 10)
            await asyncio.to_thread(
                publish_raw, mosquitto.port, "t/x", [str(i).encode() for i in range(SENT)]
            )
            await asyncio.sleep(0.5)  # everything has reached the gateway's socket by now
            held = source.depth()
            got: list[int] = []
            most = 0
            while len(got) < SENT:
                batch = await asyncio.wait_for(source.batch(30), 10)
                most = max(most, source.depth())
                got += [int(m.payload) for m in batch]
                source.ack(batch)
            return got, held, most
        finally:
            await source.stop()

    got, held, most = asyncio.run(main())
    assert held == CAPACITY  # full, and no further: the socket was not read
    assert most <= CAPACITY
    assert got == list(range(SENT))  # all of them, in order, once
