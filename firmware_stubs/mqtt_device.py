"""A simulated field device that reports over MQTT JSON the way its firmware would.

Wire contract (the gateway depends on it):

* ``stations/<station>/<device>/telemetry``, QoS 1:
  ``{"ts": <device clock, UTC epoch ms>, "seq": <1, 2, ...>, "values": {"rain_mm": 0.5}}``
* ``stations/<station>/<device>/status``, retained QoS 1: ``online`` on connect (birth),
  ``offline`` as the last will and before a clean disconnect.

Reports follow a fixed schedule from the moment the device starts: report ``k`` is due at
``k * interval_s`` and carries ``seq = start_seq + k``. A report that could not be sent
(broker down, connection lost) is gone: a real device buffers nothing, so the gateway
sees a gap in ``seq`` rather than a burst of stale readings after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from typing import Literal

import aiomqtt

from firmware_stubs.scenario import DeviceScript, Scenario

__all__ = ["run_device", "run_scenario", "status_topic", "telemetry_payload", "telemetry_topic"]

log = logging.getLogger(__name__)

Protocol = Literal["3.1.1", "5"]

_PROTOCOLS = {"3.1.1": aiomqtt.ProtocolVersion.V311, "5": aiomqtt.ProtocolVersion.V5}
_BACKOFF_MIN_S = 0.5
_BACKOFF_MAX_S = 5.0
_IO_TIMEOUT_S = 5.0  # CONNACK / PUBACK wait; a lost PUBACK counts as a dropped connection


def telemetry_topic(station: str, device: str) -> str:
    return f"stations/{station}/{device}/telemetry"


def status_topic(station: str, device: str) -> str:
    return f"stations/{station}/{device}/status"


def telemetry_payload(ts_ms: int, seq: int, values: dict[str, float]) -> bytes:
    return json.dumps({"ts": ts_ms, "seq": seq, "values": values}, separators=(",", ":")).encode()


def device_clock_ms(clock_offset_s: float) -> int:
    """The device's own clock: true UTC time plus its offset, in epoch milliseconds."""
    return time.time_ns() // 1_000_000 + round(clock_offset_s * 1000)


async def _stopped_within(stop: asyncio.Event, delay_s: float) -> bool:
    """Wait up to ``delay_s`` for ``stop``; True if it is set."""
    if delay_s > 0 and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await stop.wait()
    return stop.is_set()


async def run_device(
    script: DeviceScript,
    *,
    station: str,
    host: str,
    port: int,
    interval_s: float,
    protocol: Protocol = "5",
    count: int | None = None,
    stop: asyncio.Event | None = None,
    seed: int = 0,
    start_seq: int = 1,
) -> int:
    """Report ``script``'s values until ``count`` reports are sent or ``stop`` is set.

    Reconnects with a capped backoff when the broker is unreachable or drops the
    connection. Returns the number of reports the broker acknowledged.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    loop = asyncio.get_running_loop()
    stop = stop if stop is not None else asyncio.Event()
    rng = random.Random(f"{seed}/{script.id}")
    status = status_topic(station, script.id)
    telemetry = telemetry_topic(station, script.id)
    will = aiomqtt.Will(status, b"offline", qos=1, retain=True)
    started = loop.time()
    tick = sent = 0
    backoff = _BACKOFF_MIN_S

    def done() -> bool:
        return stop.is_set() or (count is not None and sent >= count)

    while not done():
        client = aiomqtt.Client(
            host,
            port,
            identifier=f"stub-{script.id}",
            protocol=_PROTOCOLS[protocol],
            will=will,
            timeout=_IO_TIMEOUT_S,
        )
        try:
            async with client:
                log.info("%s: connected to %s:%d", script.id, host, port)
                backoff = _BACKOFF_MIN_S
                await client.publish(status, b"online", qos=1, retain=True)
                try:
                    while not done():
                        # Skip the ticks that passed while disconnected or too slow.
                        tick = max(tick, int((loop.time() - started) // interval_s))
                        if await _stopped_within(stop, started + tick * interval_s - loop.time()):
                            break
                        values = script.values_at(loop.time() - started, rng)
                        payload = telemetry_payload(
                            device_clock_ms(script.clock_offset_s), start_seq + tick, values
                        )
                        tick += 1
                        await client.publish(telemetry, payload, qos=1)
                        sent += 1
                        log.debug("%s: %s", script.id, payload.decode())
                finally:
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.publish(status, b"offline", qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            log.warning("%s: %s; retrying in %.1f s", script.id, exc, backoff)
            if await _stopped_within(stop, backoff):
                break
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
    log.info("%s: stopped after %d reports", script.id, sent)
    return sent


async def run_scenario(
    scenario: Scenario,
    *,
    station: str,
    host: str,
    port: int,
    protocol: Protocol = "5",
    stop: asyncio.Event | None = None,
    seed: int = 0,
    interval_s: float | None = None,
    count: int | None = None,
) -> None:
    """Run every device of ``scenario`` concurrently.

    ``interval_s`` overrides every device's interval; ``count`` limits each device.
    """
    async with asyncio.TaskGroup() as group:
        for device in scenario.devices:
            group.create_task(
                run_device(
                    device,
                    station=station,
                    host=host,
                    port=port,
                    interval_s=scenario.interval_for(device) if interval_s is None else interval_s,
                    protocol=protocol,
                    count=count,
                    stop=stop,
                    seed=seed,
                ),
                name=f"stub-{device.id}",
            )
