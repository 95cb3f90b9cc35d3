"""Feeding a frame stream from a TCP connection or a serial line (the IO of framed codecs).

Both loops do the same for every protocol: read what arrives, let the pure codec cut it
into frames and rejects, hand them to the driver (which commits them and answers with the
replies to send), write the replies, and count a frame cut off by silence, a closed
connection or a lost line as a reject instead of storing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from drivers.link.framing import Reject, Stream
from drivers.link.serial_line import LineLost, SerialLine

log = logging.getLogger("stationgw.frames")

# the driver's handling of one read: commit what the items carry, return replies to send
Handle = Callable[[list[Any]], Awaitable[list[bytes]]]


async def pump_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    stream: Stream[Any],
    handle: Handle,
    *,
    source: str,
    frame_timeout_s: float,
    idle_timeout_s: float,
) -> None:
    """Until the peer closes or stays silent: frames in, replies out; then close."""

    def flushed(why: str) -> list[Any]:
        partial: Reject | None = stream.flush(why)
        return [partial] if partial is not None else []

    try:
        while True:
            wait = frame_timeout_s if stream.pending else idle_timeout_s
            try:
                data = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                if not stream.pending:
                    log.info("%s: silent for %.0f s; closing", source, wait)
                    break
                await handle(flushed(f"no further bytes for {wait:g} s"))
                continue
            if not data:
                break
            replies = await handle(stream.feed(data))
            for r in replies:
                writer.write(r)
            if replies:
                await writer.drain()
    except (ConnectionError, OSError) as e:
        log.info("%s: connection lost (%s)", source, e)
    except Exception:
        log.exception("%s: closing the connection after an error; nothing was confirmed", source)
    finally:
        rest = flushed("connection closed")
        if rest:
            with contextlib.suppress(asyncio.CancelledError):
                await handle(rest)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def pump_line(
    line: SerialLine, stream: Stream[Any], handle: Handle, *, source: str, frame_timeout_s: float
) -> None:
    """Read a serial line for ever, reopening it when it goes away."""
    try:
        while True:
            await line.open()
            try:
                while True:
                    wait = frame_timeout_s if stream.pending else None
                    data = await line.read(wait)
                    if not data:
                        partial = stream.flush(f"line silent for {wait:g} s")
                        await handle([partial] if partial else [])
                        continue
                    for r in await handle(stream.feed(data)):
                        await line.write(r)
            except LineLost as e:
                log.warning("%s: %s; reopening", source, e)
                line.close()
                partial = stream.flush("serial line lost")
                if partial is not None:
                    await handle([partial])
    finally:
        line.close()
