"""The event hub: what one commit publishes goes out in order as one write; close ends it."""

from __future__ import annotations

import asyncio

from gateway.events import _CLOSE, Hub


def test_events_published_together_go_out_in_order_as_one_write() -> None:
    async def run() -> list[bytes]:
        hub = Hub()
        stream = hub.subscribe(keepalive_s=60)
        got = [await anext(stream)]  # connected
        hub.publish("readings", [1])
        hub.publish("device", {"id": "a"})
        hub.publish("ticket", {"id": 7})
        got.append(await anext(stream))
        hub.publish("device", {"id": "b"})
        got.append(await anext(stream))
        hub.close_all()
        got += [chunk async for chunk in stream]
        return got

    got = asyncio.run(run())
    assert got == [
        b": connected\n\n",
        b'event: readings\ndata: [1]\n\nevent: device\ndata: {"id":"a"}\n\n'
        b'event: ticket\ndata: {"id":7}\n\n',
        b'event: device\ndata: {"id":"b"}\n\n',
    ]


def test_a_quiet_stream_keeps_alive_and_a_close_after_events_sends_them_first() -> None:
    async def run() -> list[bytes]:
        hub = Hub()
        stream = hub.subscribe(keepalive_s=0.01)
        got = [await anext(stream), await anext(stream)]  # connected, keepalive
        hub.publish("ticket", {"id": 1})
        for q in list(hub._subs):  # a close queued behind an event (as close_all on a slow page)
            q.put_nowait(_CLOSE)
        got += [chunk async for chunk in stream]
        return got

    assert asyncio.run(run()) == [
        b": connected\n\n",
        b": keepalive\n\n",
        b'event: ticket\ndata: {"id":1}\n\n',
    ]
